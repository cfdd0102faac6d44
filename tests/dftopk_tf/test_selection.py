"""Linear-time selection (``dftopk_tf.selection``) against NumPy sorts.

The k-th/(k+1)-th largest real values are checked against ``np.sort`` and the top-k mask against a
stable argsort (ties to the lower index, the ``tf.math.top_k`` order), for every threshold search,
with and without XLA, on rows drawn from awkward distributions, with per-row k and padding.
"""

import re

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import ops, selection

ROWS, N = 7, 41  # one shape for every random case, so each XLA program compiles once
SELECTIONS = list(selection.SELECTIONS)
FLOAT32_MAX = np.finfo(np.float32).max


def _normal(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(ROWS, N))


def _integer_ties(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-2, 3, size=(ROWS, N)).astype(np.float64)


def _huge(rng: np.random.Generator) -> np.ndarray:
    values = rng.normal(size=(ROWS, N)) * 1e37
    values[:, :4] = [FLOAT32_MAX, -FLOAT32_MAX, 3e38, -3e38]
    return rng.permuted(values, axis=1)


def _tiny(rng: np.random.Generator) -> np.ndarray:
    # Normal (not subnormal) magnitudes: TF's CPU kernels flush subnormals to zero.
    magnitude = 10.0 ** rng.uniform(-37.5, -30.0, size=(ROWS, N))
    return magnitude * rng.choice([-1.0, 1.0], size=(ROWS, N))


def _infinities(rng: np.random.Generator) -> np.ndarray:
    values = rng.normal(size=(ROWS, N))
    values[rng.random((ROWS, N)) < 0.2] = np.inf
    values[rng.random((ROWS, N)) < 0.2] = -np.inf
    return values


def _signed_zeros(rng: np.random.Generator) -> np.ndarray:
    values = rng.choice([-0.0, 0.0, 1.0, -1.0], size=(ROWS, N), p=[0.35, 0.35, 0.15, 0.15])
    return values


DISTRIBUTIONS = {
    "normal": _normal,
    "integer_ties": _integer_ties,
    "huge": _huge,
    "tiny": _tiny,
    "infinities": _infinities,
    "signed_zeros": _signed_zeros,
}


def _random_case(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 scores, a mask (row 0 all real, row 1 all padded, row 2 one real item), per-row k.

    k ranges over 1 .. N + 2, so some rows ask for at least as many items as they have.
    """
    rng = np.random.default_rng(seed)
    scores = DISTRIBUTIONS[name](rng).astype(np.float32)
    mask = rng.random((ROWS, N)) < 0.7
    mask[0] = True
    mask[1] = False
    mask[2] = False
    mask[2, N // 2] = True
    k = rng.integers(1, N + 3, size=ROWS).astype(np.int32)
    k[3] = 1
    k[4] = int(mask[4].sum())
    k[5] = int(mask[5].sum()) - 1
    return scores, mask, k


def numpy_kth_pair(scores: np.ndarray, k: np.ndarray, mask: np.ndarray) -> tuple[list, list]:
    """k-th and (k+1)-th largest real value per row by ``np.sort``; -inf where missing."""
    kth, next_kth = [], []
    for row_scores, row_k, row_mask in zip(scores, k, mask, strict=True):
        real = np.sort(row_scores[row_mask])[::-1]
        if np.isnan(real).any():
            kth.append(np.nan)
            next_kth.append(np.nan)
            continue
        kth.append(real[row_k - 1] if row_k <= real.size else -np.inf)
        next_kth.append(real[row_k] if row_k < real.size else -np.inf)
    return kth, next_kth


def numpy_topk_mask(scores: np.ndarray, k: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The first min(k, count) real non-NaN items of a stable descending argsort, per row."""
    selected = np.zeros(scores.shape, bool)
    for row, (row_scores, row_k, row_mask) in enumerate(zip(scores, k, mask, strict=True)):
        candidates = np.flatnonzero(row_mask & ~np.isnan(row_scores))
        order = candidates[np.argsort(-row_scores[candidates], kind="stable")]
        selected[row, order[:row_k]] = True
    return selected


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("selection_name", SELECTIONS)
@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_kth_largest_pair_matches_numpy_sort(distribution, selection_name, jit_compile):
    for seed in range(2):
        scores, mask, k = _random_case(distribution, seed)
        kth, next_kth = selection.kth_largest_pair(
            scores, tf.constant(k), mask=mask, selection=selection_name, jit_compile=jit_compile
        )
        expected_kth, expected_next = numpy_kth_pair(scores, k, mask)
        np.testing.assert_array_equal(kth.numpy(), np.float32(expected_kth))
        np.testing.assert_array_equal(next_kth.numpy(), np.float32(expected_next))


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("distribution", list(DISTRIBUTIONS))
def test_topk_mask_matches_stable_argsort(distribution, jit_compile):
    for seed in range(2):
        scores, mask, k = _random_case(distribution, seed)
        selected = selection.topk_mask(scores, tf.constant(k), mask=mask, jit_compile=jit_compile)
        np.testing.assert_array_equal(selected.numpy(), numpy_topk_mask(scores, k, mask))


@pytest.mark.parametrize("selection_name", SELECTIONS)
def test_scalar_k_without_mask_and_leading_dimensions(selection_name):
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(2, 3, 9)).astype(np.float32)
    k = np.full(6, 4)
    kth, next_kth = selection.kth_largest_pair(scores, 4, selection=selection_name)
    expected_kth, expected_next = numpy_kth_pair(scores.reshape(6, 9), k, np.ones((6, 9), bool))
    np.testing.assert_array_equal(kth.numpy(), np.reshape(expected_kth, (2, 3)))
    np.testing.assert_array_equal(next_kth.numpy(), np.reshape(expected_next, (2, 3)))
    selected = selection.topk_mask(scores, 4).numpy().reshape(6, 9)
    all_real = np.ones((6, 9), bool)
    np.testing.assert_array_equal(selected, numpy_topk_mask(scores.reshape(6, 9), k, all_real))


def test_signed_zeros_tie_and_the_lower_index_wins():
    scores = np.array([[0.0, -0.0, -0.0, 0.0, -1.0]], np.float32)
    np.testing.assert_array_equal(
        selection.topk_mask(scores, 3).numpy(), [[True, True, True, False, False]]
    )
    kth, next_kth = selection.kth_largest_pair(scores, 4)
    assert kth.numpy()[0] == 0.0 and next_kth.numpy()[0] == -1.0


@pytest.mark.parametrize("selection_name", SELECTIONS)
def test_nan_row_gives_nan_and_other_rows_are_exact(selection_name):
    scores = np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 1.0, 3.0, 2.0]], np.float32)
    kth, next_kth = selection.kth_largest_pair(scores, 2, selection=selection_name)
    assert np.isnan(kth.numpy()[0]) and np.isnan(next_kth.numpy()[0])
    assert kth.numpy()[1] == 3.0 and next_kth.numpy()[1] == 2.0
    # A NaN on a padded item is ignored; topk_mask never selects a NaN.
    masked = selection.kth_largest_pair(scores, 2, mask=~np.isnan(scores), selection=selection_name)
    np.testing.assert_array_equal([value.numpy()[0] for value in masked], [2.0, 1.0])
    np.testing.assert_array_equal(
        selection.topk_mask(scores, 3).numpy(),
        [[True, False, True, True], [True, False, True, True]],
    )


def test_order_keys_round_trip_and_order():
    values = np.array(
        [-np.inf, -FLOAT32_MAX, -1.5, -1e-30, 0.0, 1e-30, 2.0, FLOAT32_MAX, np.inf], np.float32
    )
    keys = selection.order_keys(values).numpy()
    assert np.all(np.diff(keys.astype(np.int64)) > 0)
    assert np.all(keys > selection.ABSENT_KEY)
    np.testing.assert_array_equal(selection.values_of_keys(keys).numpy(), values)
    assert selection.order_keys(np.float32(-0.0)).numpy() == selection.order_keys(0.0).numpy()


def test_occurrence_index_counts_ties_by_position():
    keys = tf.constant([[5, 7, 5, 5], [1, 2, 3, 4]])
    found = selection.occurrence_index(keys, tf.constant([5, 9]), tf.constant([3, 1]))
    np.testing.assert_array_equal(found.numpy(), [3, 4])  # 4 = n: no such occurrence


def test_unknown_selection_is_rejected():
    with pytest.raises(ValueError, match="unknown selection method 'sort'"):
        selection.kth_largest_pair(tf.zeros([1, 3]), 1, selection="sort")


def test_float_k_is_rejected():
    with pytest.raises(TypeError, match="k must be an integer"):
        selection.topk_mask(tf.zeros([1, 3]), tf.constant([1.0]))


def test_auto_resolves_to_the_benchmarked_path_for_shape_k_device_and_xla():
    # The same rule on every CPU: XLA's top_k for small k in long rows under XLA.
    kernel_k = selection.AUTO_KERNEL_MAX_K
    (short_n, short_k), *_, (long_n, long_k) = selection.AUTO_XLA_TOP_K

    def resolve(*args, **kwargs):  # the timing-free rule
        return selection.resolve_selection(*args, **kwargs, autotune=False)

    assert resolve("auto", short_n - 1, 10, jit_compile=True) == ("radix", True)
    assert resolve("auto", short_n, short_k, jit_compile=True) == ("top_k", True)
    assert resolve("auto", short_n, short_k + 1, jit_compile=True) == ("radix", True)
    assert resolve("auto", long_n, long_k, jit_compile=True) == ("top_k", True)
    assert resolve("auto", long_n // 2, long_k + 1, jit_compile=True) == ("radix", True)
    bracket_n = selection.AUTO_BRACKET_MIN_N
    assert resolve("auto", bracket_n - 1, 500, jit_compile=True) == ("radix", True)
    assert resolve("auto", bracket_n, bracket_n // 2, jit_compile=True) == ("bracket", True)
    assert resolve("auto", None, 10, jit_compile=True) == ("radix", True)
    assert resolve("auto", 10**6, None, jit_compile=True) == ("bracket", True)
    assert resolve("auto", 10**6, kernel_k, jit_compile=False) == ("top_k", False)
    assert resolve("auto", 10**6, kernel_k + 1, jit_compile=False) == ("bracket", False)
    assert resolve("auto", 1_000, kernel_k + 1, jit_compile=False) == ("radix", False)
    assert resolve("auto", 100, None, jit_compile=False) == ("radix", False)
    assert resolve("auto", 100, 10, jit_compile=True, device="GPU") == ("top_k", True)
    assert resolve("auto", 100, None, jit_compile=True, device="GPU") == ("radix", True)
    assert resolve("radix", 10**6, 10, jit_compile=False) == ("radix", False)
    with pytest.raises(ValueError, match="unknown selection method 'sort'"):
        resolve("sort", 10, 1, jit_compile=True)


def test_static_k_reads_the_largest_k_known_while_building():
    assert selection.static_k(tf.constant([3, 7])) == 7 and selection.static_k(4) == 4


def _entry_parameters(hlo_text: str) -> int:
    """Parameters of an HLO module's entry computation (inputs XLA did not fold into constants)."""
    entry = hlo_text[hlo_text.index("ENTRY") :]
    return len(re.findall(r"= [^=]*parameter\(\d+\)", entry))


@pytest.mark.parametrize("selection_name", ["radix", "bracket", "top_k"])
def test_compiled_searches_take_the_scores_as_an_input_not_a_constant(selection_name):
    # A top_k width computed from the data made XLA treat the scores as compile-time constants:
    # one compile per batch (46 s at 256 x 10,000) and a benchmark that timed a folded constant.
    scores, mask, k = tf.random.normal([ROWS, N]), tf.ones([ROWS, N], tf.bool), tf.fill([ROWS], 3)
    compiled_pair = selection._COMPILED_PAIR_ROWS.experimental_get_compiler_ir(
        scores, mask, k, selection_name
    )
    assert _entry_parameters(compiled_pair(stage="hlo")) >= 2  # scores and mask (k may fold)
    settings = ops.ThresholdSettings(selection_name, jit_compile=True, probabilities=True)
    forward, _ = ops._passes(settings)
    compiled_forward = forward.experimental_get_compiler_ir(
        scores, mask, k, tf.constant(0.1), settings=settings
    )
    assert _entry_parameters(compiled_forward(stage="hlo")) >= 3  # scores, mask and tau
