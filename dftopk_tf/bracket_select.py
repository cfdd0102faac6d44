"""Sample-bracket selection: the k-th and (k+1)-th largest key with few passes over the row.

The radix select (``key_passes.radix_kth_key``) makes 32 counting passes over every row. Here a
small strided sample of each row, sorted, supplies candidate thresholds instead of bits:

1. ``count(keys >= sample[j])`` grows with the sample position j, so the smallest j where it
   reaches ``min(k + 1, key_count)`` is found by bisection over the sample positions, one
   counting pass per step (``tf.while_loop``: a batch stops when its slowest row has settled).
   The search starts from a window of a few binomial standard deviations around the position the
   sample predicts (two counting passes check its ends; a row whose check fails searches the
   whole sample), so a row takes about ``2 + log2(window)`` passes instead of 32.
2. The two adjacent sample keys found, ``lo <= hi``, bracket the k-th and the (k+1)-th largest
   key: at most k keys are >= ``hi`` and at least k + 1 are >= ``lo``. One more pass counts
   the keys strictly between them per block of the row; those keys (about n / s of them) are
   gathered into a small static buffer through the blocks' running counts.
3. The buffer's order statistics (the radix select over ``buffer_size`` keys, in cache), or
   ``hi`` or ``lo`` themselves (ties there cost nothing), give the answer. Rows with more keys
   strictly between ``lo`` and ``hi`` than the buffer holds (a heavily tied value that the
   sample missed) make the whole batch take ``fallback`` (the full radix select) instead, so
   results are always exactly the radix select's.

Only the sample (about 4 sqrt(n) keys) is sorted, so a row costs O(n) still.

Example:
    >>> from dftopk_tf.key_passes import order_keys, values_of_keys
    >>> keys = order_keys(tf.reshape(tf.range(64, dtype=tf.float32), [1, 64]))
    >>> plan = BracketPlan(sample_size=8, block_size=8, buffer_size=16)
    >>> kth, nxt = bracket_kth_key_pair(keys, tf.constant([5]), tf.constant([64]), plan=plan)
    >>> values_of_keys(kth).numpy().tolist(), values_of_keys(nxt).numpy().tolist()
    ([59.0], [58.0])
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from dftopk_tf.key_passes import ABSENT_KEY, MAX_KEY, count_at_least, radix_kth_key_pair

KeyPair = tuple[tf.Tensor, tf.Tensor]

#: Rows shorter than this take the full radix select: the bracket's sample sort and gather cost
#: about what they save there (``python -m benchmarks.bench_ops`` times both paths by n).
BRACKET_MIN_N: int = 50_000
#: Half-width of the first search window, in binomial standard deviations of the sample rank.
WINDOW_SIGMAS: float = 4.0
#: The buffer holds this many times the mean gap between adjacent sample keys (the gap that
#: holds the k-th key is size-biased: mean 2 n / s; 12 n / s is exceeded with odds ~1e-4).
BUFFER_GAPS: int = 12
#: Keys per block in the gather: each buffer slot reads one block (more keys per block, fewer
#: bisection steps to find a slot's block).
BLOCK_SIZE: int = 8


@dataclass(frozen=True)
class BracketPlan:
    """Static sizes of the bracket search for one row width.

    Attributes:
        sample_size: keys sampled per row (strided), s.
        block_size: keys per block in the gather (divides the row width or the row is padded).
        buffer_size: keys gathered per row; a larger bracket falls back to the full search.

    Example:
        >>> BracketPlan(sample_size=256, block_size=32, buffer_size=512).sample_size
        256
    """

    sample_size: int
    block_size: int
    buffer_size: int


def bracket_plan(n: int | None) -> BracketPlan | None:
    """The sizes for rows of n keys, or None where the full radix select is cheaper (small or
    unknown n).

    s grows as 4 sqrt(n) (rounded to a power of two, at most 4,096), so that sorting the
    sample stays far cheaper than a pass over the row; the buffer holds ``BUFFER_GAPS`` n / s.

    Example:
        >>> bracket_plan(1_000_000)
        BracketPlan(sample_size=4096, block_size=8, buffer_size=4096)
        >>> bracket_plan(100) is None
        True
    """
    if n is None or n < BRACKET_MIN_N:
        return None
    sample_size = min(4096, 2 ** round(math.log2(4.0 * math.sqrt(n))))
    buffer_size = 2 ** math.ceil(math.log2(BUFFER_GAPS * n / sample_size))
    return BracketPlan(sample_size, BLOCK_SIZE, min(buffer_size, n))


def _sorted_sample(keys: tf.Tensor, sample_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Strided sample of each row sorted descending, with ``ABSENT_KEY + 1`` appended (every
    real key is >= it), and each row's count of real sampled keys."""
    stride = keys.shape[-1] // sample_size
    sample = keys[:, : sample_size * stride : stride]
    real = tf.reduce_sum(tf.cast(sample > ABSENT_KEY, tf.int32), axis=-1)
    floor = tf.fill([tf.shape(keys)[0], 1], ABSENT_KEY + 1)
    ordered = tf.sort(tf.maximum(sample, ABSENT_KEY + 1), axis=-1, direction="DESCENDING")
    return tf.concat([ordered, floor], axis=-1), real


def _splitter(ordered: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
    """The sample key at ``position`` per row; ``MAX_KEY`` (nothing is above) at position -1."""
    last = ordered.shape[-1] - 1
    key = tf.gather(ordered, tf.clip_by_value(position, 0, last), batch_dims=1)
    return tf.where(position < 0, MAX_KEY, key)


def _counted(keys: tf.Tensor, ordered: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
    """``count(keys >= sample[position])`` per row (0 at position -1)."""
    return tf.where(position < 0, 0, count_at_least(keys, _splitter(ordered, position)))


def _bracket_positions(
    keys: tf.Tensor,
    ordered: tf.Tensor,
    real_sampled: tf.Tensor,
    target: tf.Tensor,
    key_count: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Adjacent sample positions a = b - 1 with count(>= sample[a]) < target <= count(>= sample[b]).

    Returns a, b and both counts (position -1 stands for ``MAX_KEY``, the last position for
    ``ABSENT_KEY + 1``, whose count is ``key_count`` >= target).
    """
    last = ordered.shape[-1] - 1
    share = tf.cast(target, tf.float32) / tf.cast(tf.maximum(key_count, 1), tf.float32)
    sampled = tf.cast(real_sampled, tf.float32)
    estimate = tf.cast(tf.math.floor(share * sampled), tf.int32) - 1
    spread = WINDOW_SIGMAS * tf.sqrt(sampled * share * (1.0 - share))
    half_width = tf.cast(tf.math.ceil(spread), tf.int32) + 2
    start = tf.clip_by_value(estimate - half_width, -1, last)
    stop = tf.clip_by_value(estimate + half_width, -1, last)
    start_count = _counted(keys, ordered, start)
    stop_count = tf.where(stop == last, key_count, _counted(keys, ordered, stop))
    inside = tf.logical_and(start_count < target, stop_count >= target)
    a = tf.where(inside, start, -1)
    b = tf.where(inside, stop, last)
    a_count = tf.where(inside, start_count, 0)
    b_count = tf.where(inside, stop_count, key_count)

    def unsettled(a: tf.Tensor, b: tf.Tensor, *_: tf.Tensor) -> tf.Tensor:
        return tf.reduce_any(b - a > 1)

    def halve(
        a: tf.Tensor, b: tf.Tensor, a_count: tf.Tensor, b_count: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        middle = (a + b) // 2
        middle_count = _counted(keys, ordered, middle)
        open_rows = b - a > 1
        down = tf.logical_and(open_rows, middle_count >= target)
        up = tf.logical_and(open_rows, middle_count < target)
        return (
            tf.where(up, middle, a),
            tf.where(down, middle, b),
            tf.where(up, middle_count, a_count),
            tf.where(down, middle_count, b_count),
        )

    return tf.while_loop(unsettled, halve, (a, b, a_count, b_count))


def _gather_bracket(
    keys: tf.Tensor, low: tf.Tensor, high: tf.Tensor, plan: BracketPlan
) -> tuple[tf.Tensor, tf.Tensor]:
    """The keys strictly between ``low`` and ``high`` of each row, in row order, in
    [rows, buffer_size] (padded with ``ABSENT_KEY``), and each row's count of them (which may
    exceed the buffer)."""
    rows, n, block = tf.shape(keys)[0], keys.shape[-1], plan.block_size
    blocks_count = -(-n // block)
    if blocks_count * block != n:
        keys = tf.pad(keys, [[0, 0], [0, blocks_count * block - n]], constant_values=ABSENT_KEY)
    blocks = tf.reshape(keys, [rows, blocks_count, block])
    in_bracket = tf.logical_and(
        blocks > low[:, tf.newaxis, tf.newaxis], blocks < high[:, tf.newaxis, tf.newaxis]
    )
    # float32 sums of a block's ones are exact; XLA on CPU reduces float32 fastest.
    per_block = tf.cast(tf.reduce_sum(tf.cast(in_bracket, tf.float32), axis=-1), tf.int32)
    running = tf.cumsum(per_block, axis=-1)
    total = running[:, -1]
    slots = tf.broadcast_to(tf.range(plan.buffer_size)[tf.newaxis, :], [rows, plan.buffer_size])
    # Each slot's block: the first block whose running count exceeds the slot (bisection).
    first, past = tf.zeros_like(slots), tf.fill(tf.shape(slots), blocks_count)
    for _ in range(math.ceil(math.log2(blocks_count + 1))):
        middle = (first + past) // 2
        running_there = tf.gather(running, tf.minimum(middle, blocks_count - 1), batch_dims=1)
        open_slots = first < past
        first = tf.where(tf.logical_and(open_slots, running_there <= slots), middle + 1, first)
        past = tf.where(tf.logical_and(open_slots, running_there > slots), middle, past)
    slot_block = tf.minimum(first, blocks_count - 1)
    before = tf.gather(running - per_block, slot_block, batch_dims=1)
    candidates = tf.gather(blocks, slot_block, batch_dims=1)
    is_candidate = tf.logical_and(
        candidates > low[:, tf.newaxis, tf.newaxis], candidates < high[:, tf.newaxis, tf.newaxis]
    )
    # Running count within the block, unrolled: XLA fuses it (its cumsum is a slow scan).
    counts = tf.unstack(tf.cast(is_candidate, tf.int32), axis=-1)
    rank = tf.stack([tf.add_n(counts[: i + 1]) for i in range(block)], axis=-1) - 1
    chosen = tf.logical_and(is_candidate, tf.equal(rank, (slots - before)[..., tf.newaxis]))
    buffer = tf.reduce_max(tf.where(chosen, candidates, ABSENT_KEY), axis=-1)
    return tf.where(slots < total[:, tf.newaxis], buffer, ABSENT_KEY), total


def bracket_kth_key_pair(
    keys: tf.Tensor,
    k: tf.Tensor,
    key_count: tf.Tensor,
    fallback: Callable[[tf.Tensor, tf.Tensor], KeyPair] = radix_kth_key_pair,
    plan: BracketPlan | None = None,
) -> KeyPair:
    """k-th and (k+1)-th largest key per row of int32 ``keys`` [rows, n], by a sample bracket.

    Needs 1 <= k <= ``key_count`` (each row's count of keys above ``ABSENT_KEY``); where
    k = ``key_count`` the second key is meaningless (callers mask it). ``fallback(keys, k)``
    answers rows too short for a bracket (``bracket_plan``) and batches where some row's bracket
    overflows its buffer; ``plan`` overrides the sizes (tests use small ones).

    Example:
        >>> from dftopk_tf.key_passes import order_keys, values_of_keys
        >>> keys = order_keys(tf.constant([[3.0, 1.0, 2.0]]))
        >>> kth, nxt = bracket_kth_key_pair(keys, tf.constant([1]), tf.constant([3]))
        >>> values_of_keys(kth).numpy().tolist(), values_of_keys(nxt).numpy().tolist()
        ([3.0], [2.0])
    """
    plan = plan or bracket_plan(keys.shape[-1])
    if plan is None or keys.shape[-1] is None:
        return fallback(keys, k)
    if not 1 <= plan.sample_size <= keys.shape[-1] or min(plan.block_size, plan.buffer_size) < 1:
        raise ValueError(f"{plan} does not fit rows of {keys.shape[-1]} keys")
    ordered, real_sampled = _sorted_sample(keys, plan.sample_size)
    target = tf.minimum(k + 1, key_count)
    a, b, above_high, _ = _bracket_positions(keys, ordered, real_sampled, target, key_count)
    low, high = _splitter(ordered, b), _splitter(ordered, a)
    buffer, between = _gather_bracket(keys, low, high, plan)
    # Descending, the row's keys from rank above_high + 1 on are: the buffer's keys (strictly
    # between low and high), then copies of low. above_high <= k, so rank >= 0; rank 0 means
    # the k-th key is high itself.
    rank = k - above_high
    buffer_kth, buffer_next = radix_kth_key_pair(
        buffer, tf.clip_by_value(rank, 1, tf.maximum(between, 1))
    )
    kth = tf.where(rank == 0, high, tf.where(rank <= between, buffer_kth, low))
    next_in_buffer = tf.where(rank == 0, buffer_kth, buffer_next)
    next_kth = tf.where(rank + 1 <= between, next_in_buffer, low)
    fits = tf.reduce_all(between <= plan.buffer_size)
    return tf.cond(fits, lambda: (kth, next_kth), lambda: fallback(keys, k))
