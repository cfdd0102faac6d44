"""When two scores tie: equal up to float noise, the same on every CPU.

Identical inputs need not get bit-identical scores: matrix-product kernels block their sums
differently per instruction set (AVX2, AVX-512) and per library (oneDNN, Eigen, XLA), so two
copies of one item can score an ulp or a few apart on one CPU and alike on another. The
evaluation protocol counts ties against the model (``dftopk_cascade.models.protocol``); for that
rule to hold on every CPU, scores of a request closer than ``TIE_RTOL`` times the request's score
scale (its largest finite absolute real score) count as tied. Ties chain: sorted scores whose
neighbours are each within the tolerance form one tied group.

Example:
    >>> import numpy as np
    >>> scores = np.array([[0.5, 0.5 + 1e-7, 0.25, 9.0]])  # the 9.0 is padding
    >>> tie_ranks(scores, np.array([[True, True, True, False]])).tolist()
    [[2.0, 2.0, 1.0, 0.0]]
"""

from typing import Any

import numpy as np
import tensorflow as tf

#: Scores of a request closer than this times its largest finite absolute real score are tied:
#: about 80 float32 ulps, wide for kernels' summation noise, narrow beside trained score gaps.
TIE_RTOL: float = 1e-5


def tie_ranks(scores: Any, mask: Any) -> Any:
    """Scores [batch, n] replaced by their tied groups' ranks: 1 = lowest group, equal if tied.

    Order-only metrics (recalls, NDCG, Kendall tau) give the ranks the values they give the
    scores, except that scores within the tolerance now tie exactly. Padded items (``mask``
    False) get 0 and never join a group of real items; NaN scores stay NaN (so that the metrics'
    check on real scores still sees them). Works on NumPy arrays and tensors alike.

    Example:
        >>> tie_ranks(tf.constant([[3.0, 1.0, 3.0]]), tf.constant([[True, True, True]])).numpy()
        array([[2., 1., 2.]], dtype=float32)
    """
    if isinstance(scores, np.ndarray) or isinstance(mask, np.ndarray):
        return _numpy_tie_ranks(np.asarray(scores, np.float32), np.asarray(mask, bool))
    return _tensor_tie_ranks(tf.cast(scores, tf.float32), tf.cast(mask, tf.bool))


def distinct_scores(values: np.ndarray) -> int:
    """How many tied groups a request's real scores (1-D) form; 0 for none.

    Example:
        >>> distinct_scores(np.array([1.0, 1.0 + 1e-7, 2.0]))
        2
    """
    values = np.asarray(values, np.float32).reshape(1, -1)
    if values.size == 0:
        return 0
    return int(_numpy_tie_ranks(values, np.ones(values.shape, bool)).max())


def _numpy_tie_ranks(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    finite = mask & np.isfinite(scores)
    scale = np.max(np.where(finite, np.abs(scores), 0.0), axis=-1, keepdims=True)
    by_score = np.argsort(scores, axis=-1, kind="stable")
    # Padded items first, then the real ones by score ascending.
    order = np.take_along_axis(
        by_score, np.argsort(np.take_along_axis(mask, by_score, -1), -1, kind="stable"), -1
    )
    ascending = np.take_along_axis(scores, order, axis=-1)
    real = np.take_along_axis(mask, order, axis=-1)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN: equal infinities tie
        apart = np.diff(ascending, axis=-1) > TIE_RTOL * scale
    starts = np.concatenate([real[:, :1], real[:, 1:] & (apart | ~real[:, :-1])], axis=-1)
    ranks = np.zeros(scores.shape, np.float32)
    np.put_along_axis(ranks, order, np.cumsum(starts, axis=-1), axis=-1)
    return np.where(np.isnan(scores), scores, np.where(mask, ranks, 0.0))


def _tensor_tie_ranks(scores: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    finite = mask & tf.math.is_finite(scores)
    scale = tf.reduce_max(tf.where(finite, tf.abs(scores), 0.0), axis=-1, keepdims=True)
    # Padded scores may be NaN: sort them as 0, then put the padded items first.
    by_score = tf.argsort(tf.where(mask, scores, 0.0), axis=-1, stable=True)
    real_by_score = tf.cast(tf.gather(mask, by_score, batch_dims=1), tf.int32)
    order = tf.gather(by_score, tf.argsort(real_by_score, axis=-1, stable=True), batch_dims=1)
    ascending = tf.gather(scores, order, batch_dims=1)
    real = tf.gather(mask, order, batch_dims=1)
    apart = ascending[:, 1:] - ascending[:, :-1] > TIE_RTOL * scale  # inf - inf: NaN, tied
    starts = tf.concat([real[:, :1], real[:, 1:] & (apart | ~real[:, :-1])], axis=-1)
    sorted_ranks = tf.cumsum(tf.cast(starts, tf.float32), axis=-1)
    ranks = tf.gather(sorted_ranks, tf.argsort(order, axis=-1, stable=True), batch_dims=1)
    return tf.where(tf.math.is_nan(scores), scores, tf.where(mask, ranks, 0.0))
