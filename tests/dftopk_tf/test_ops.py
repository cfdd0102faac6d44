"""The DFTopK operator (``dftopk_tf.ops``): values, gradients, padding, dtypes, graphs, errors.

Values are checked against a NumPy formula and ``dftopk_reference`` (the plain ``tf.math.top_k``
formula); gradients against autodiff of that reference and against ``tf.test.compute_gradient``.
"""

import textwrap

import numpy as np
import pytest
import tensorflow as tf

from dftopk_tf import ops, selection
from dftopk_tf.keras_compat import keras
from tests.fresh_interpreter import run_python_json

SELECTIONS = list(selection.SELECTIONS)
FLOAT32_MAX = np.finfo(np.float32).max
PADDING_SCORES = np.array(
    [1e30, -1e30, np.inf, -np.inf, np.nan, 0.3, 7.0, FLOAT32_MAX, -FLOAT32_MAX], np.float32
)


def numpy_dftopk_logits(
    scores: np.ndarray, k: np.ndarray, tau: float, mask: np.ndarray
) -> np.ndarray:
    """(x - theta) / tau in float64 per row, theta the mean of the k-th and (k+1)-th largest.

    Rows with k >= their real count get +inf (select all); padded items get -inf.
    """
    logits = np.full(scores.shape, -np.inf)
    for row, (row_scores, row_k, row_mask) in enumerate(zip(scores, k, mask, strict=True)):
        real = np.sort(row_scores[row_mask].astype(np.float64))[::-1]
        if row_k >= real.size:
            logits[row, row_mask] = np.inf
            continue
        theta = 0.5 * real[row_k - 1] + 0.5 * real[row_k]
        logits[row, row_mask] = (row_scores[row_mask] - theta) / tau
    return logits


def numpy_sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))


def reference_logits(scores: tf.Tensor, k: int, tau: float, mask: tf.Tensor) -> tf.Tensor:
    """The plain logit formula with ``tf.math.top_k`` (autodiff oracle for ``dftopk_logits``)."""
    ranked = tf.math.top_k(tf.where(mask, scores, float("-inf")), k=k + 1).values
    theta = 0.5 * ranked[..., k - 1] + 0.5 * ranked[..., k]
    return tf.where(mask, (scores - theta[..., tf.newaxis]) / tau, ops.PADDED_LOGIT)


def value_and_gradient(function, scores, weights):
    """function(scores) and the gradient of sum(weights * function(scores)) wrt the scores."""
    scores = tf.convert_to_tensor(scores)
    with tf.GradientTape() as tape:
        tape.watch(scores)
        value = function(scores)
        loss = tf.reduce_sum(tf.cast(weights, value.dtype) * value)
    return value.numpy(), tape.gradient(loss, scores).numpy()


def _case(seed: int, rows: int = 5, n: int = 12, ties: bool = False):
    """float32 scores, a mask with more than 4 real items per row and weights."""
    rng = np.random.default_rng(seed)
    if ties:
        scores = rng.integers(-2, 3, size=(rows, n)).astype(np.float32)
    else:
        scores = rng.normal(size=(rows, n)).astype(np.float32)
    mask = rng.random((rows, n)) < 0.75
    mask[:, :5] = True
    mask = rng.permuted(mask, axis=1)
    weights = rng.normal(size=(rows, n)).astype(np.float32)
    return scores, mask, weights


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("selection_name", SELECTIONS)
@pytest.mark.parametrize("ties", [False, True])
def test_values_match_numpy_formula_and_reference(ties, selection_name, jit_compile):
    scores, mask, _ = _case(seed=1, ties=ties)
    k = np.array([1, 2, 3, 4, 12], np.int32)  # the last row selects all of its real items
    options = {"tau": 0.7, "mask": mask, "selection": selection_name, "jit_compile": jit_compile}
    logits = ops.dftopk_logits(scores, tf.constant(k), **options).numpy()
    p = ops.dftopk(scores, tf.constant(k), **options).numpy()
    expected = numpy_dftopk_logits(scores, k, 0.7, mask)
    finite = np.isfinite(expected)
    np.testing.assert_allclose(logits[finite], expected[finite], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p, numpy_sigmoid(expected), rtol=1e-5, atol=1e-6)
    for row in range(4):
        reference = ops.dftopk_reference(
            scores[row : row + 1], int(k[row]), 0.7, mask[row : row + 1]
        )
        np.testing.assert_allclose(p[row : row + 1], reference.numpy(), rtol=1e-6, atol=1e-7)


def test_scalar_k_leading_dimensions_and_docstring_values():
    scores, mask, _ = _case(seed=2, rows=6)
    p = ops.dftopk(scores.reshape(2, 3, 12), 3, tau=0.3, mask=mask.reshape(2, 3, 12)).numpy()
    expected = numpy_sigmoid(numpy_dftopk_logits(scores, np.full(6, 3), 0.3, mask))
    np.testing.assert_allclose(p.reshape(6, 12), expected, rtol=1e-5, atol=1e-6)
    single = ops.dftopk(tf.constant([3.0, 1.0, 2.0, 0.0]), k=2, tau=0.5).numpy()
    np.testing.assert_allclose(single, numpy_sigmoid((np.array([3.0, 1, 2, 0]) - 1.5) / 0.5))


def test_infinite_scores_order_as_usual_and_an_infinite_threshold_is_nan():
    scores = np.array([[np.inf, 1.0, -np.inf, 0.0, np.inf]], np.float32)
    # theta = (1 + 0) / 2: the infinite items get exactly 1 and 0, the finite ones sigmoid(+-0.5).
    expected = numpy_sigmoid(np.array([[np.inf, 0.5, -np.inf, -0.5, np.inf]]))
    np.testing.assert_allclose(ops.dftopk(scores, 3).numpy(), expected, rtol=1e-6, atol=0)
    logits = ops.dftopk_logits(scores, 1).numpy()  # theta = (inf + inf) / 2
    assert np.isnan(logits[0, [0, 4]]).all() and logits[0, 1] == -np.inf


# --- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("selection_name", SELECTIONS)
@pytest.mark.parametrize("ties", [False, True])
def test_gradient_matches_autodiff_of_the_top_k_formula(ties, selection_name, jit_compile):
    scores, mask, weights = _case(seed=3, ties=ties)
    options = {"selection": selection_name, "jit_compile": jit_compile}
    for k in (1, 3):
        p, grad = value_and_gradient(
            lambda x, k=k: ops.dftopk(x, k, 0.5, mask, **options), scores, weights
        )
        p_ref, grad_ref = value_and_gradient(
            lambda x, k=k: ops.dftopk_reference(x, k, 0.5, mask), scores, weights
        )
        np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-5, atol=1e-6)
        assert np.all(grad[~mask] == 0.0)
        logits, grad = value_and_gradient(
            lambda x, k=k: ops.dftopk_logits(x, k, 0.5, mask, **options), scores, weights
        )
        logits_ref, grad_ref = value_and_gradient(
            lambda x, k=k: reference_logits(x, k, 0.5, mask), scores, weights
        )
        np.testing.assert_allclose(logits, logits_ref, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(grad, grad_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("n", "k", "jit_compile", "path"),
    [
        (selection.AUTO_XLA_TOP_K[0][0], selection.AUTO_XLA_TOP_K[0][1], True, "top_k"),
        (selection.AUTO_XLA_TOP_K[0][0], selection.AUTO_KERNEL_MAX_K + 1, True, "radix"),
        (90, selection.AUTO_KERNEL_MAX_K, False, "top_k"),
        (200, selection.AUTO_KERNEL_MAX_K + 36, False, "radix"),
        (selection.AUTO_BRACKET_MIN_N, 1_000, True, "bracket"),
    ],
)
def test_auto_gives_the_radix_values_and_gradients_on_every_path_it_picks(n, k, jit_compile, path):
    # The cases resolve to top_k and to the radix select, each with and without XLA, and to
    # the sample bracket (the timing-free rule: the suite sets DFTOPK_TF_AUTOTUNE=0).
    assert selection.resolve_selection("auto", n, k, jit_compile)[0] == path
    rng = np.random.default_rng(n + k)
    # Ties (integers) exercise the tie order of the threshold's gradient too.
    scores = rng.integers(-n // 4, n // 4, size=(2, n)).astype(np.float32)
    mask = rng.random((2, n)) < 0.9
    weights = rng.normal(size=(2, n)).astype(np.float32)
    for function in (ops.dftopk, ops.dftopk_logits):
        auto = value_and_gradient(
            lambda x, f=function: f(x, k, 0.3, mask, selection="auto", jit_compile=jit_compile),
            scores,
            weights,
        )
        radix = value_and_gradient(
            lambda x, f=function: f(
                x, k, 0.3, mask, selection="radix", jit_compile=not jit_compile
            ),
            scores,
            weights,
        )
        for got, expected in zip(auto, radix, strict=True):
            # The threshold's share sums n terms in XLA's or TF's order: 1e-5 relative at n = 1e5.
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_tied_threshold_share_lands_on_the_top_k_order_positions():
    scores = tf.constant([[1.0, 1.0, 1.0, 1.0, 0.0]])
    _, grad = value_and_gradient(lambda x: ops.dftopk_logits(x, 2), scores, tf.ones([1, 5]))
    # Five items of upstream 1: the share -5/2 goes to top_k's 2nd and 3rd items (indices 1, 2).
    np.testing.assert_array_equal(grad, [[1.0, -1.5, -1.5, 1.0, 1.0]])


@pytest.mark.parametrize("selection_name", SELECTIONS)
def test_per_row_k_gradient_equals_rows_run_separately(selection_name):
    scores, mask, weights = _case(seed=4, ties=True)
    k = np.array([1, 4, 2, 3, 5], np.int64)
    p, grad = value_and_gradient(
        lambda x: ops.dftopk(x, tf.constant(k), 0.8, mask, selection=selection_name),
        scores,
        weights,
    )
    for row in range(len(k)):
        rows = slice(row, row + 1)
        p_ref, grad_ref = value_and_gradient(
            lambda x, row=row, rows=rows: ops.dftopk_reference(x, int(k[row]), 0.8, mask[rows]),
            scores[rows],
            weights[rows],
        )
        np.testing.assert_allclose(p[rows], p_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(grad[rows], grad_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("with_mask", [False, True])
def test_gradient_matches_finite_differences(with_mask):
    rng = np.random.default_rng(5)
    # Well-separated scores: finite differences of step 1e-3 never reorder them.
    scores = (rng.permutation(14).reshape(2, 7) * 0.25).astype(np.float32)
    mask = np.ones_like(scores, bool)
    if with_mask:
        mask[0, [1, 5]] = False
        mask[1, 3] = False
    # Zero weights on padded items: their logit, -1e4, would swamp the float32 differences.
    weights = tf.constant(np.where(mask, rng.normal(size=scores.shape), 0.0).astype(np.float32))
    k = tf.constant([2, 3])
    for function in (ops.dftopk, ops.dftopk_logits):
        theoretical, numerical = tf.test.compute_gradient(
            lambda x, function=function: tf.reduce_sum(weights * function(x, k, 0.6, mask)),
            [tf.constant(scores)],
            delta=1e-3,
        )
        np.testing.assert_allclose(theoretical[0], numerical[0], atol=2e-3)
        assert np.all(theoretical[0].reshape(scores.shape)[~mask] == 0.0)


def test_select_all_rows_give_no_threshold_share():
    scores, mask, weights = _case(seed=6)
    k = tf.constant([3, 99, 2, 12, 1])
    _, grad = value_and_gradient(lambda x: ops.dftopk_logits(x, k, 0.5, mask), scores, weights)
    # Rows 1 and 3 select all: each real item gets only its own upstream / tau.
    for row in (1, 3):
        np.testing.assert_array_equal(grad[row], np.where(mask[row], weights[row] / 0.5, 0.0))


# --- padding, select-all, NaN ------------------------------------------------------------------


def _with_padding(scores: np.ndarray, weights: np.ndarray, n_padded: int, seed: int):
    """Inserts padded items with awkward scores at random slots; returns scores, mask, weights
    and the slots of the real items."""
    rng = np.random.default_rng(seed)
    rows, n_real = scores.shape
    n = n_real + n_padded
    slots = np.stack([np.sort(rng.choice(n, n_real, replace=False)) for _ in range(rows)])
    padded_scores = rng.choice(PADDING_SCORES, (rows, n))
    padded_weights = rng.normal(size=(rows, n)).astype(np.float32)
    mask = np.zeros((rows, n), bool)
    np.put_along_axis(padded_scores, slots, scores, axis=1)
    np.put_along_axis(padded_weights, slots, weights, axis=1)
    np.put_along_axis(mask, slots, True, axis=1)
    return padded_scores, mask, padded_weights, slots


@pytest.mark.parametrize("n_padded", [1, 9, 60])
@pytest.mark.parametrize("selection_name", SELECTIONS)
def test_padded_items_change_no_output_and_no_gradient(selection_name, n_padded):
    rng = np.random.default_rng(n_padded)
    scores = rng.integers(-3, 4, size=(4, 8)).astype(np.float32)
    weights = rng.normal(size=scores.shape).astype(np.float32)
    k = tf.constant([1, 3, 8, 20])  # the last two rows select all of their items
    padded_scores, mask, padded_weights, slots = _with_padding(scores, weights, n_padded, 7)
    for function in (
        lambda x, m: ops.dftopk(x, k, 0.4, m, selection=selection_name),
        lambda x, m: ops.dftopk_logits(x, k, 0.4, m, selection=selection_name),
        lambda x, m: ops.dftopk(x, k, 0.4, m, hard=True, selection=selection_name),
    ):
        value, grad = value_and_gradient(lambda x, f=function: f(x, None), scores, weights)
        value_padded, grad_padded = value_and_gradient(
            lambda x, f=function: f(x, mask), padded_scores, padded_weights
        )
        np.testing.assert_allclose(
            np.take_along_axis(value_padded, slots, axis=1), value, rtol=1e-6, atol=1e-7
        )
        # The threshold share sums a longer row: a different summation order, float32 rounding.
        np.testing.assert_allclose(
            np.take_along_axis(grad_padded, slots, axis=1), grad, rtol=1e-6, atol=1e-6
        )
        assert np.all(grad_padded[~mask] == 0.0)
        assert np.all(np.isfinite(value_padded)) and np.all(np.isfinite(grad_padded))
    p_padded = ops.dftopk(padded_scores, k, 0.4, mask, selection=selection_name).numpy()
    assert np.all(p_padded[~mask] == 0.0)
    logits_padded = ops.dftopk_logits(padded_scores, k, 0.4, mask, selection=selection_name).numpy()
    assert np.all(logits_padded[~mask] == ops.PADDED_LOGIT)


@pytest.mark.parametrize("magnitude", [1.0, 1e9])
@pytest.mark.parametrize("tau", [1.0, 0.01])
def test_k_at_least_real_count_selects_every_real_item(tau, magnitude):
    scores = np.array(
        [[0.5, -2.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0], [2.0, 9.0, -1.0, 0.0], [4.0, 3.0, 2.0, 1.0]],
        np.float32,
    ) * np.float32(magnitude)
    mask = np.array([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    for k in (tf.constant([4, 2, 1, 7]), 9):
        p = ops.dftopk(scores, k, tau, mask).numpy()
        np.testing.assert_array_equal(p, mask.astype(np.float32))
        logits = ops.dftopk_logits(scores, k, tau, mask)
        assert np.all(np.isfinite(logits.numpy()))
        bce = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(mask, tf.float32), logits)
        assert np.all(np.isfinite(bce.numpy()))
        np.testing.assert_array_equal(ops.dftopk(scores, k, tau, mask, hard=True).numpy(), p)


def test_nan_on_a_real_item_spoils_only_its_row():
    scores, mask, weights = _case(seed=8)
    spoiled = scores.copy()
    spoiled[2, np.flatnonzero(mask[2])[1]] = np.nan
    spoiled[3, np.flatnonzero(~mask[3])[0]] = np.nan  # a padded NaN is ignored
    for function in (ops.dftopk, ops.dftopk_logits):
        value, grad = value_and_gradient(lambda x, f=function: f(x, 2, 0.5, mask), scores, weights)
        value_nan, grad_nan = value_and_gradient(
            lambda x, f=function: f(x, 2, 0.5, mask), spoiled, weights
        )
        assert np.isnan(value_nan[2][mask[2]]).all()
        assert not np.isnan(value_nan[2][~mask[2]]).any()
        others = [0, 1, 3, 4]
        np.testing.assert_array_equal(value_nan[others], value[others])
        np.testing.assert_array_equal(grad_nan[others], grad[others])


# --- hard mode, dtypes -------------------------------------------------------------------------


@pytest.mark.parametrize("selection_name", SELECTIONS)
def test_hard_forward_is_the_top_k_mask_and_gradient_is_the_soft_one(selection_name):
    scores, mask, weights = _case(seed=9, ties=True)
    k = tf.constant([1, 2, 5, 12, 3])
    hard, grad_hard = value_and_gradient(
        lambda x: ops.dftopk(x, k, 0.5, mask, hard=True, selection=selection_name), scores, weights
    )
    _, grad_soft = value_and_gradient(
        lambda x: ops.dftopk(x, k, 0.5, mask, selection=selection_name), scores, weights
    )
    np.testing.assert_array_equal(hard, selection.topk_mask(scores, k, mask).numpy())
    np.testing.assert_allclose(grad_hard, grad_soft, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_low_and_high_precision_inputs(dtype):
    scores, mask, weights = _case(seed=10)
    low = tf.cast(scores, dtype)
    as_float32 = tf.cast(low, tf.float32)
    p, grad = value_and_gradient(lambda x: ops.dftopk(x, 3, 0.5, mask), low, weights)
    p32, grad32 = value_and_gradient(lambda x: ops.dftopk(x, 3, 0.5, mask), as_float32, weights)
    assert p.dtype == np.float32 and grad.dtype == dtype.as_numpy_dtype
    np.testing.assert_array_equal(p, p32)
    np.testing.assert_array_equal(grad, tf.cast(grad32, dtype).numpy())
    assert ops.dftopk_logits(low, 3).dtype == tf.float32


# --- graphs: tf.function, XLA, SavedModel, MirroredStrategy ------------------------------------


def _p_and_gradient(scores, weights, mask, k):
    with tf.GradientTape() as tape:
        tape.watch(scores)
        p = ops.dftopk(scores, k, 0.5, mask)
        loss = tf.reduce_sum(p * weights)
    return p, tape.gradient(loss, scores)


def test_tf_function_with_unknown_shapes():
    scores, mask, weights = _case(seed=11, rows=4)
    k = np.array([1, 3, 2, 9], np.int32)
    eager = [t.numpy() for t in _p_and_gradient(tf.constant(scores), weights, mask, k)]
    matrix = tf.TensorSpec([None, None], tf.float32)
    traced = tf.function(
        _p_and_gradient,
        input_signature=[
            matrix,
            matrix,
            tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    for got, expected in zip(traced(scores, weights, mask, k), eager, strict=True):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-8)
    cube = tf.TensorSpec([None, None, None], tf.float32)
    traced_3d = tf.function(
        _p_and_gradient,
        input_signature=[
            cube,
            cube,
            tf.TensorSpec([None, None, None], tf.bool),
            tf.TensorSpec([None, None], tf.int32),
        ],
    )
    got = traced_3d(*(np.reshape(a, (2, 2, -1)) for a in (scores, weights, mask)), k.reshape(2, 2))
    for got_part, expected in zip(got, eager, strict=True):
        np.testing.assert_allclose(got_part.numpy().reshape(expected.shape), expected, atol=1e-8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="mask shape must equal"):
        traced(scores, weights, mask[:, :5], k)


def test_inside_an_xla_compiled_function():
    scores, mask, weights = _case(seed=12, rows=4, ties=True)
    k = tf.constant([1, 3, 2, 9])
    eager = [t.numpy() for t in _p_and_gradient(tf.constant(scores), weights, mask, k)]
    compiled = tf.function(_p_and_gradient, jit_compile=True)
    for got, expected in zip(compiled(tf.constant(scores), weights, mask, k), eager, strict=True):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)


class _ScoringModule(tf.Module):
    """A Keras dense scorer followed by DFTopK, with serving signatures taking k and the mask.

    ``select`` is the XLA-free graph (stock TF Serving); ``select_compiled`` uses XLA.
    """

    _SIGNATURE = (
        tf.TensorSpec([None, None, 3], tf.float32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None, None], tf.bool),
    )

    def __init__(self):
        super().__init__()
        self.scorer = keras.layers.Dense(1, kernel_initializer="glorot_uniform", use_bias=False)
        self.scorer.build((None, None, 3))

    @tf.function(input_signature=_SIGNATURE)
    def select(self, features, k, mask):
        scores = self.scorer(features)[..., 0]
        return {
            "p": ops.dftopk(scores, k, 0.5, mask, jit_compile=False),
            "logits": ops.dftopk_logits(scores, k, 0.5, mask, jit_compile=False),
            "hard": ops.dftopk(scores, k, 0.5, mask, hard=True, jit_compile=False),
        }

    @tf.function(input_signature=_SIGNATURE)
    def select_compiled(self, features, k, mask):
        return {"p": ops.dftopk(self.scorer(features)[..., 0], k, 0.5, mask, jit_compile=True)}


def test_saved_model_round_trip_gives_identical_outputs(tmp_path):
    rng = np.random.default_rng(13)
    features = rng.normal(size=(3, 10, 3)).astype(np.float32)
    mask = rng.random((3, 10)) < 0.8
    k = np.array([2, 5, 10], np.int32)
    module = _ScoringModule()
    before = module.select(features, k, mask)
    before_compiled = module.select_compiled(features, k, mask)
    np.testing.assert_allclose(before_compiled["p"].numpy(), before["p"].numpy(), atol=1e-7)
    tf.saved_model.save(
        module,
        str(tmp_path / "model"),
        signatures={"serving_default": module.select, "compiled": module.select_compiled},
    )
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    after = loaded.select(features, k, mask)
    for name, value in before.items():
        np.testing.assert_array_equal(after[name].numpy(), value.numpy())
    for name, expected in (("serving_default", before), ("compiled", before_compiled)):
        served = loaded.signatures[name](features=features, k=k, mask=mask)
        np.testing.assert_array_equal(served["p"].numpy(), expected["p"].numpy())


_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dftopk_tf import ops

    rng = np.random.default_rng(0)
    scores = rng.integers(-2, 3, size=(4, 9)).astype(np.float32)
    weights = rng.normal(size=(4, 9)).astype(np.float32)
    mask = rng.random((4, 9)) < 0.8
    k = np.array([1, 3, 2, 9], np.int32)

    def step(scores, weights, mask, k):
        with tf.GradientTape() as tape:
            tape.watch(scores)
            p = ops.dftopk(scores, k, 0.5, mask)
            loss = tf.reduce_sum(p * weights)
        return p, tape.gradient(loss, scores)

    single = [t.numpy() for t in step(tf.constant(scores), weights, mask, k)]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def shard(array):
        half = len(array) // 2
        return strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(array[context.replica_id_in_sync_group * half:][:half])
        )

    distributed = tf.function(lambda *args: strategy.run(step, args=args))
    outputs = distributed(*(shard(a) for a in (scores, weights, mask, k)))
    replicated = [
        np.concatenate([t.numpy() for t in strategy.experimental_local_results(output)])
        for output in outputs
    ]
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "max_difference": [float(np.max(np.abs(a - b))) for a, b in zip(single, replicated)],
    }))
    """
)


def test_mirrored_strategy_over_two_cpus_matches_a_single_device():
    # Logical devices must be configured before TensorFlow initialises: a fresh interpreter.
    result = run_python_json(_MIRRORED_SCRIPT)
    assert result["replicas"] == 2
    # Not bitwise: the kernels vectorise a 2-row and a 4-row batch differently.
    assert max(result["max_difference"]) < 1e-6


# --- errors ------------------------------------------------------------------------------------


SCORES = tf.zeros([2, 5])


@pytest.mark.parametrize("function", [ops.dftopk, ops.dftopk_logits])
def test_bad_input_raises_a_clear_error(function):
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        function(SCORES, 0)
    with pytest.raises(ValueError, match="k must be >= 1, got -2"):
        function(SCORES, -2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 1"):
        function(SCORES, tf.constant([2, 0]))
    with pytest.raises(TypeError, match=r"k must be an int or an integer tensor, got 2\.0"):
        function(SCORES, 2.0)
    with pytest.raises(TypeError, match="k must be an int or an integer tensor, got True"):
        function(SCORES, True)
    with pytest.raises(TypeError, match="k must be an integer tensor, got dtype float32"):
        function(SCORES, tf.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match="per-row k must have the scores' batch shape"):
        function(SCORES, tf.constant([1, 2, 3]))
    with pytest.raises(ValueError, match="per-row k must have the scores' batch shape"):
        function(SCORES, tf.constant([[1], [2]]))
    with pytest.raises(ValueError, match="at least one dimension"):
        function(tf.constant(1.0), 1)
    with pytest.raises(ValueError, match="mask shape"):
        function(SCORES, 1, mask=np.ones((2, 4), bool))
    with pytest.raises(TypeError, match="scores must be a floating-point tensor, got dtype int32"):
        function(tf.zeros([2, 5], tf.int32), 1)
    for tau in (0.0, -1.0):
        with pytest.raises(ValueError, match="tau must be > 0"):
            function(SCORES, 1, tau)
    with pytest.raises(tf.errors.InvalidArgumentError, match="tau must be > 0"):
        function(SCORES, 1, tf.constant(0.0))
    with pytest.raises(ValueError, match="unknown selection method 'sort'"):
        function(SCORES, 1, selection="sort")
