"""Peer top-k operators for comparison with DFTopK, all as ``peer(scores, k, mask=None, **params)``.

Each returns float32 selection probabilities ``[..., n]`` in [0, 1], 0 on padded items, and padded
items change nothing. ``neuralsort``, ``softsort`` and ``diffsort`` return the relaxed permutation
matrices ``[..., n, n]`` the LCRON probabilities are built from.

Example:
    >>> import tensorflow as tf
    >>> from dftopk_tf.peers import lapsum
    >>> lapsum(tf.constant([[2.0, 0.0, 1.0]]), k=1).shape.as_list()
    [1, 3]
"""

from dftopk_tf.peers.diffsort import diffsort
from dftopk_tf.peers.lapsum import lapsum
from dftopk_tf.peers.neuralsort import neuralsort
from dftopk_tf.peers.permutation_topk import lcron_diffsort, lcron_neuralsort, lcron_softsort
from dftopk_tf.peers.sigmoid import sigmoid_selection
from dftopk_tf.peers.softsort import softsort
from dftopk_tf.peers.sparse_topk import sparse_topk

__all__ = [
    "diffsort",
    "lapsum",
    "lcron_diffsort",
    "lcron_neuralsort",
    "lcron_softsort",
    "neuralsort",
    "sigmoid_selection",
    "softsort",
    "sparse_topk",
]
