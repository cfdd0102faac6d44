"""In-batch negative sampling: extra candidates for each request from other requests' candidates.

Each request gets ``num_negatives`` extra candidates drawn uniformly, with replacement, from the
real stage candidates (slots 0-39) of the *other* requests of the batch, or, with
``cross_replica=True``, of the other requests of every replica's batch (gathered with
``ReplicaContext.all_gather``). They are appended after the stage slots with label 0
(``labels.IN_BATCH_NEGATIVE_LABEL``), mask True, stage 4 and preference 0 (unknown for this
user). A request with no other real candidate in the pool gets padded slots instead.

Sampling is a plain TF computation (no Python per request): the real candidates are listed in
row order, so each request's own candidates are one contiguous block; a uniform draw over the
list *without* that block is shifted past it. Stateless random ops make it deterministic for a
seed.

Example:
    >>> features, labels = add_in_batch_negatives(features, labels, num_negatives=16, seed=1)
    >>> features["items"].shape[1]  # 40 + 16
    56
"""

import tensorflow as tf
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines.labels import IN_BATCH_NEGATIVE_LABEL, STAGE_IN_BATCH_NEGATIVE

from dftopk_tf.masking import PADDING_LABEL


def _as_seed(seed: int | tf.Tensor) -> tf.Tensor:
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    seed.shape.assert_is_compatible_with([2])
    return seed


def sample_other_candidates(
    pool_mask: tf.Tensor, query_rows: tf.Tensor, num_negatives: int, seed: int | tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draws, for each query request, real pool candidates that belong to other requests.

    Args:
        pool_mask: bool [pool, slots]: the real candidates of every request in the pool.
        query_rows: int [queries]: each query request's own row in the pool (excluded).
        num_negatives: draws per query.
        seed: int, or int tensor of shape [2] (a stateless RNG seed).

    Returns:
        ``(indices, available)``: int32 [queries, num_negatives] positions in the flattened
        [pool * slots] candidates, and bool [queries, num_negatives], False where the pool holds
        no other real candidate (the index is then 0 and meaningless).

    Example:
        >>> mask = tf.constant([[True, False], [True, True]])
        >>> indices, available = sample_other_candidates(mask, tf.constant([0]), 3, seed=0)
        >>> set(indices.numpy()[0].tolist()) <= {2, 3}, bool(available.numpy().all())
        (True, True)
    """
    pool_mask = tf.convert_to_tensor(pool_mask, tf.bool)
    query_rows = tf.cast(query_rows, tf.int32)
    counts = tf.reduce_sum(tf.cast(pool_mask, tf.int32), axis=1)
    starts = tf.cumsum(counts, exclusive=True)
    total = tf.reduce_sum(counts)
    # Positions of the real candidates, row by row: each row is one contiguous block.
    positions = tf.cast(tf.where(tf.reshape(pool_mask, [-1]))[:, 0], tf.int32)
    positions = tf.concat([positions, [0]], axis=0)  # keeps the gather valid when total == 0
    own_count = tf.gather(counts, query_rows)
    own_start = tf.gather(starts, query_rows)
    others = total - own_count
    uniform = tf.random.stateless_uniform(
        [tf.shape(query_rows)[0], num_negatives], _as_seed(seed), dtype=tf.float64
    )
    draw = tf.cast(tf.floor(uniform * tf.cast(others, tf.float64)[:, None]), tf.int32)
    draw = tf.minimum(draw, tf.maximum(others - 1, 0)[:, None])
    skip_own = tf.where(draw < own_start[:, None], draw, draw + own_count[:, None])
    available = tf.broadcast_to((others > 0)[:, None], tf.shape(draw))
    indices = tf.where(available, tf.gather(positions, tf.minimum(skip_own, total)), 0)
    return indices, available


def add_in_batch_negatives(
    features: dict[str, tf.Tensor],
    labels: dict[str, tf.Tensor],
    num_negatives: int,
    seed: int | tf.Tensor,
    cross_replica: bool = False,
) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """Appends ``num_negatives`` in-batch negatives per request to a ``make_dataset`` batch.

    Args:
        features, labels: a batch as produced by ``dftopk_cascade.pipelines.input.make_dataset``;
        only the 40
            stage slots are sampled from (negatives already appended are not).
        num_negatives: extra candidates per request (>= 0).
        seed: int, or int tensor of shape [2]; vary it per batch (e.g. ``[seed, step]``).
        cross_replica: sample from every replica's batch; call inside ``strategy.run``. Each
            replica mixes its replica id into the seed.

    Returns:
        New ``(features, labels)`` dicts with N = previous N + ``num_negatives`` for ``items``,
        ``item_mask``, ``stage``, ``label`` and ``preference``.

    Example:
        >>> new_features, new_labels = add_in_batch_negatives(features, labels, 160, seed=[42, 7])
        >>> float(tf.reduce_max(new_labels["label"][:, 40:])), new_features["stage"].shape
        (0.0, TensorShape([8, 200]))
    """
    if num_negatives < 0:
        raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
    items = features[fmt.ITEMS][:, : fmt.NUM_CANDIDATES]
    mask = features[fmt.ITEM_MASK][:, : fmt.NUM_CANDIDATES]
    batch = tf.shape(items)[0]
    seed = _as_seed(seed)
    if cross_replica:
        context = tf.distribute.get_replica_context()
        if context is None:
            raise RuntimeError(
                "add_in_batch_negatives(cross_replica=True) must run in a replica context "
                "(inside strategy.run)"
            )
        replica = context.replica_id_in_sync_group
        sizes = context.all_gather(tf.reshape(batch, [1]), axis=0)
        offset = tf.reduce_sum(sizes[:replica])
        items = context.all_gather(items, axis=0)
        mask = tf.cast(context.all_gather(tf.cast(mask, tf.int32), axis=0), tf.bool)
        seed = tf.random.experimental.stateless_fold_in(seed, replica)
    else:
        offset = 0
    indices, available = sample_other_candidates(
        mask, offset + tf.range(batch), num_negatives, seed
    )
    negatives = tf.gather(tf.reshape(items, [-1, len(fmt.ITEM_FIELDS)]), indices)
    negatives = tf.where(available[..., None], negatives, tf.zeros_like(negatives))

    def extended(values: tf.Tensor, fill: tf.Tensor) -> tf.Tensor:
        return tf.concat([values, tf.cast(fill, values.dtype)], axis=1)

    padding = tf.constant(PADDING_LABEL, tf.float32)
    negative_label = tf.where(available, IN_BATCH_NEGATIVE_LABEL, padding)
    new_features = dict(features)
    new_features[fmt.ITEMS] = extended(features[fmt.ITEMS], negatives)
    new_features[fmt.ITEM_MASK] = extended(features[fmt.ITEM_MASK], available)
    new_features[fmt.STAGE] = extended(
        features[fmt.STAGE], tf.fill(tf.shape(indices), STAGE_IN_BATCH_NEGATIVE)
    )
    new_labels = dict(labels)
    new_labels[fmt.LABEL] = extended(labels[fmt.LABEL], negative_label)
    new_labels[fmt.PREFERENCE] = extended(labels[fmt.PREFERENCE], tf.where(available, 0.0, padding))
    return new_features, new_labels
