"""LCRON selection probabilities from a relaxed permutation matrix (NeuralSort, SoftSort, DiffSort).

With P ``[n, n]`` a relaxed permutation matrix (row r = soft one-hot of the item at rank r), the
probability that item j is among the top m is the mass of its column in the first m rows, relative
to the column's total mass over the real ranks:

    p_j = sum_{r < m} P[r, j] / sum_r P[r, j].

This is the LCRON baseline family's selection probability; building P costs O(n^2) memory (O(n^3)
time for DiffSort). Rows with m >= their real count give p = 1 on every real item; padded items
get 0.

Example:
    >>> p = lcron_softsort(tf.constant([[3.0, 1.0, 2.0]]), k=2, tau=0.01)
    >>> p.numpy().round(3).tolist()
    [[1.0, 0.0, 1.0]]
"""

import tensorflow as tf

from dftopk_tf.peers.diffsort import diffsort_rows
from dftopk_tf.peers.inputs import (
    PeerRows,
    flatten_k,
    flatten_scores,
    restore_shape,
)
from dftopk_tf.peers.neuralsort import neuralsort_rows
from dftopk_tf.peers.softsort import softsort_rows
from dftopk_tf.validation import check_positive


def top_rows_probability(matrix: tf.Tensor, k: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Per-item mass in the first ``k`` rows of ``matrix`` ``[batch, n, n]`` over its column mass.

    ``k`` is int32 ``[batch]``; returns ``[batch, n]``, 0 where ``mask`` is False.

    Example:
        >>> top_rows_probability(tf.constant([[[0.75, 0.25], [0.25, 0.75]]]), tf.constant([1]),
        ...                      tf.constant([[True, True]])).numpy().tolist()
        [[0.75, 0.25]]
    """
    top_rows = tf.range(tf.shape(matrix)[1])[None, :] < k[:, None]
    top_mass = tf.reduce_sum(tf.where(top_rows[:, :, None], matrix, 0.0), axis=1)
    column_mass = tf.reduce_sum(matrix, axis=1)
    probability = tf.clip_by_value(tf.math.divide_no_nan(top_mass, column_mass), 0.0, 1.0)
    return tf.where(mask, probability, tf.zeros_like(probability))


def lcron_neuralsort(
    scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None = None, tau: float = 50.0
) -> tf.Tensor:
    """Top-k selection probabilities ``[..., n]`` from the NeuralSort matrix at temperature tau.

    Example:
        >>> lcron_neuralsort(tf.constant([3.0, 1.0, 2.0]), k=1, tau=0.01).numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    tau = check_positive("tau", tau)
    return _selection(scores, k, mask, lambda rows: neuralsort_rows(rows, tau))


def lcron_softsort(
    scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None = None, tau: float = 50.0
) -> tf.Tensor:
    """Top-k selection probabilities ``[..., n]`` from the SoftSort matrix at temperature tau.

    Example:
        >>> lcron_softsort(tf.constant([3.0, 1.0, 2.0]), k=1, tau=0.01).numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    tau = check_positive("tau", tau)
    return _selection(scores, k, mask, lambda rows: softsort_rows(rows, tau))


def lcron_diffsort(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None = None,
    steepness: float = 10.0,
) -> tf.Tensor:
    """Top-k selection probabilities ``[..., n]`` from the DiffSort (odd-even, Cauchy) matrix.

    Example:
        >>> p = lcron_diffsort(tf.constant([3.0, 1.0, 2.0]), k=1, steepness=1e4)
        >>> p.numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    steepness = check_positive("steepness", steepness)
    return _selection(scores, k, mask, lambda rows: diffsort_rows(rows, steepness))


def _selection(scores, k, mask, permutation) -> tf.Tensor:
    """Checks the inputs, builds the permutation matrix on flat rows, reads off the top-k mass."""
    rows: PeerRows = flatten_scores(scores, mask)
    k_rows = flatten_k(k, rows)
    probability = top_rows_probability(permutation(rows), k_rows, rows.mask)
    return restore_shape(probability, rows)
