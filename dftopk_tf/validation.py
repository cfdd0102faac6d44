"""Input checks shared by DFTopK and the peer operators: scores, k and positive knobs.

Everything that can be known while tracing raises at once (``TypeError`` / ``ValueError``); what is
only known at run time is checked by an assertion (``InvalidArgumentError``) with the same words.

Example:
    >>> check_k(3, tf.TensorShape([2, 5]))
    3
    >>> check_positive("tau", 0.5)
    0.5
"""

import numbers

import numpy as np
import tensorflow as tf


def check_scores(scores: tf.Tensor) -> tf.Tensor:
    """Returns ``scores`` as a tensor after checking it is floating point with shape [..., n].

    Example:
        >>> check_scores([[1.0, 2.0]]).shape.as_list()
        [1, 2]
    """
    scores = tf.convert_to_tensor(scores)
    if not scores.dtype.is_floating:
        raise TypeError(f"scores must be a floating-point tensor, got dtype {scores.dtype.name}")
    if scores.shape.rank == 0:
        raise ValueError(
            "scores must have shape [..., n] (rank >= 1, at least one dimension), got a scalar"
        )
    if scores.shape.rank is None:
        check = tf.debugging.assert_rank_at_least(scores, 1, message="scores must have rank >= 1")
        with tf.control_dependencies([check]):
            scores = tf.identity(scores)
    return scores


def check_k(k: int | tf.Tensor, scores_shape: tf.TensorShape) -> int | tf.Tensor:
    """Checks k for scores of shape [..., n]: an int >= 1, or an int tensor, scalar or [...].

    Example:
        >>> check_k(tf.constant([1, 2]), tf.TensorShape([2, 4])).numpy().tolist()
        [1, 2]
    """
    if isinstance(k, bool) or not (
        isinstance(k, numbers.Integral) or tf.is_tensor(k) or isinstance(k, np.ndarray)
    ):
        raise TypeError(f"k must be an int or an integer tensor, got {k!r}")
    if isinstance(k, numbers.Integral):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return int(k)
    k = tf.convert_to_tensor(k)
    if not k.dtype.is_integer:
        raise TypeError(f"k must be an integer tensor, got dtype {k.dtype.name}")
    batch_shape = tf.TensorShape(scores_shape)[:-1]
    if k.shape.rank not in (None, 0) and not k.shape.is_compatible_with(batch_shape):
        raise ValueError(
            f"a per-row k must have the scores' batch shape (their leading shape) {batch_shape}, "
            f"one k per row, or be a scalar; got shape {k.shape}"
        )
    with tf.control_dependencies(
        [tf.debugging.assert_greater_equal(k, tf.cast(1, k.dtype), message="k must be >= 1")]
    ):
        return tf.identity(k)


def check_positive(name: str, value: float) -> float:
    """Returns ``value`` as a Python float, raising ``ValueError`` unless it is finite and > 0.

    Example:
        >>> check_positive("alpha", 5)
        5.0
    """
    number = float(value)
    if not np.isfinite(number) or number <= 0.0:
        raise ValueError(f"{name} must be > 0 (and finite), got {value!r}")
    return number


def check_positive_tensor(name: str, value: float | tf.Tensor) -> tf.Tensor:
    """``check_positive`` for a value that may be a tensor: float32 scalar, asserted > 0.

    Example:
        >>> float(check_positive_tensor("tau", tf.constant(2.0)))
        2.0
    """
    if isinstance(value, numbers.Real):
        check_positive(name, value)
    value = tf.cast(value, tf.float32)
    with tf.control_dependencies(
        [tf.debugging.assert_positive(value, message=f"{name} must be > 0")]
    ):
        return tf.identity(value)


def check_positive_ints(**sizes: int) -> None:
    """Checks that every size is an integer >= 1 (``TypeError``, ``ValueError`` naming it).

    Example:
        >>> check_positive_ints(k=10, m=20)
        >>> check_positive_ints(k=0)
        Traceback (most recent call last):
        ...
        ValueError: k must be >= 1, got 0.
    """
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {size!r} ({type(size).__name__}).")
        if size < 1:
            raise ValueError(f"{name} must be >= 1, got {size}.")
