"""LCRON selection masses from a relaxed permutation matrix (NeuralSort, SoftSort, DiffSort).

With P ``[n, n]`` a relaxed permutation matrix (row r = soft one-hot of the item at rank r) and
c_j = sum_r P[r, j] the mass of item j's column over the real ranks, LCRON (as its official code
computes it) scores item j with the mass in the first m rows and the mass in the other rows, both
relative to the column mass held constant (no gradient flows through c_j):

    top_j = sum_{r < m} P[r, j] / (stopgrad(c_j) + 1e-6),
    bottom_j = sum_{r >= m} P[r, j] / (stopgrad(c_j) + 1e-6).

``top`` is the probability that item j is among the top m (the ``lcron_*`` functions return it);
``bottom`` is what the LCRON loss scores the negatives with. Their values sum to about 1, their
gradients do not: ``top`` moves only the first m rows, ``bottom`` only the others. Building P costs
O(n^2) memory (O(n^3) time for DiffSort). Rows with m >= their real count give top ~= 1 on every
real item; padded items get 0.

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

#: Added to the constant column mass before dividing, as in the official LCRON code.
COLUMN_EPSILON: float = 1e-6


def split_rows(matrix: tf.Tensor, k: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each column's mass in the first ``k`` rows and in the other rows, two ``[batch, n]``.

    ``matrix`` is ``[batch, n, n]`` (rows = ranks), ``k`` int32 ``[batch]``.

    Example:
        >>> top, bottom = split_rows(tf.constant([[[0.75, 0.25], [0.25, 0.75]]]), tf.constant([1]))
        >>> top.numpy().tolist(), bottom.numpy().tolist()
        ([[0.75, 0.25]], [[0.25, 0.75]])
    """
    top_rows = (tf.range(tf.shape(matrix)[1])[None, :] < k[:, None])[:, :, None]
    top_mass = tf.reduce_sum(tf.where(top_rows, matrix, 0.0), axis=1)
    bottom_mass = tf.reduce_sum(tf.where(top_rows, 0.0, matrix), axis=1)
    return top_mass, bottom_mass


def rank_masses(matrix: tf.Tensor, k: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(top, bottom): ``split_rows`` over each column's mass, held constant (stop-gradient).

    ``matrix`` is ``[batch, n, n]`` (rows = ranks), ``k`` int32 ``[batch]``; ``COLUMN_EPSILON`` is
    added to the column mass. Returns two ``[batch, n]``, 0 where ``mask`` is False.

    Example:
        >>> top, bottom = rank_masses(tf.constant([[[0.75, 0.25], [0.25, 0.75]]]),
        ...                           tf.constant([1]), tf.constant([[True, True]]))
        >>> top.numpy().round(4).tolist(), bottom.numpy().round(4).tolist()
        ([[0.75, 0.25]], [[0.25, 0.75]])
    """
    top_mass, bottom_mass = split_rows(matrix, k)
    column_mass = tf.stop_gradient(tf.reduce_sum(matrix, axis=1)) + COLUMN_EPSILON
    zeros = tf.zeros_like(top_mass)
    return (
        tf.where(mask, top_mass / column_mass, zeros),
        tf.where(mask, bottom_mass / column_mass, zeros),
    )


def permutation_masses(
    permutation, scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None, temperature: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """``rank_masses`` ``[..., n]`` of ``permutation(rows, temperature)``, e.g. ``softsort_rows``.

    Example:
        >>> scores = tf.constant([[2.0, 0.0]])
        >>> top, bottom = permutation_masses(softsort_rows, scores, 1, None, 0.01)
        >>> top.numpy().round(3).tolist(), bottom.numpy().round(3).tolist()
        ([[1.0, 0.0]], [[0.0, 1.0]])
    """
    rows: PeerRows = flatten_scores(scores, mask)
    k_rows = flatten_k(k, rows)
    top, bottom = rank_masses(permutation(rows, temperature), k_rows, rows.mask)
    return restore_shape(top, rows), restore_shape(bottom, rows)


def lcron_neuralsort(
    scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None = None, tau: float = 50.0
) -> tf.Tensor:
    """LCRON ``top`` mass ``[..., n]`` (the selection probability) of the NeuralSort matrix at tau.

    Example:
        >>> lcron_neuralsort(tf.constant([3.0, 1.0, 2.0]), k=1, tau=0.01).numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    tau = check_positive("tau", tau)
    return permutation_masses(neuralsort_rows, scores, k, mask, tau)[0]


def lcron_softsort(
    scores: tf.Tensor, k: int | tf.Tensor, mask: tf.Tensor | None = None, tau: float = 50.0
) -> tf.Tensor:
    """LCRON ``top`` mass ``[..., n]`` (the selection probability) of the SoftSort matrix at tau.

    Example:
        >>> lcron_softsort(tf.constant([3.0, 1.0, 2.0]), k=1, tau=0.01).numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    tau = check_positive("tau", tau)
    return permutation_masses(softsort_rows, scores, k, mask, tau)[0]


def lcron_diffsort(
    scores: tf.Tensor,
    k: int | tf.Tensor,
    mask: tf.Tensor | None = None,
    steepness: float = 10.0,
) -> tf.Tensor:
    """LCRON ``top`` mass ``[..., n]`` (the selection probability) of the DiffSort matrix.

    Example:
        >>> p = lcron_diffsort(tf.constant([3.0, 1.0, 2.0]), k=1, steepness=1e4)
        >>> p.numpy().round(3).tolist()
        [1.0, 0.0, 0.0]
    """
    steepness = check_positive("steepness", steepness)
    return permutation_masses(diffsort_rows, scores, k, mask, steepness)[0]
