"""Mixed precision training (``--mixed-precision off|mixed_float16|mixed_bfloat16``).

The cascade is built under the chosen Keras policy (``mixed_precision_policy``): its layers compute
in float16 or bfloat16 and keep float32 variables; the scores and embeddings leave the model as
float32 and the objectives compute in float32 (``models.cascade``, ``models.objectives``). Under
``mixed_float16`` the optimizer is wrapped in a ``LossScaleOptimizer`` (``training_optimizer``)
and the train step scales the loss, so small gradients do not underflow; bfloat16 has float32's
exponent range and needs no scaling. The policy is set only while the model is built, so nothing
else in the process changes, and the saved weights are float32 either way: evaluation and export
rebuild the model under the default float32 policy.

``mixed_float16`` is for GPUs with tensor cores; ``mixed_bfloat16`` for TPUs and CPUs with AVX-512
BF16 or AMX; whether either is faster than float32 on a machine is what
``python -m benchmarks.bench_train --mixed-precision POLICY`` measures. The default is ``off``:
half precision changes the numerics, so it is opt-in.

Example:
    >>> with mixed_precision_policy("mixed_bfloat16"):
    ...     keras.layers.Dense(2).compute_dtype
    'bfloat16'
    >>> keras.mixed_precision.global_policy().name
    'float32'
"""

import contextlib
from collections.abc import Iterator

from models.tf_keras import keras

#: The ``--mixed-precision`` choices: ``off`` or a Keras policy name.
PRECISION_CHOICES: tuple[str, ...] = ("off", "mixed_float16", "mixed_bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of ``PRECISION_CHOICES``, else a ValueError naming them.

    Example:
        >>> check_precision("mixed_bfloat16")
        'mixed_bfloat16'
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(
            f"unknown mixed precision {precision!r}; choose one of {', '.join(PRECISION_CHOICES)}"
        )
    return precision


@contextlib.contextmanager
def mixed_precision_policy(precision: str) -> Iterator[None]:
    """Sets Keras' global dtype policy for the block (``off``: float32), then restores it.

    Example:
        >>> with mixed_precision_policy("off"):
        ...     keras.mixed_precision.global_policy().name
        'float32'
    """
    check_precision(precision)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32" if precision == "off" else precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def training_optimizer(
    optimizer: keras.optimizers.Optimizer, precision: str
) -> keras.optimizers.Optimizer:
    """``optimizer``, wrapped in a dynamic ``LossScaleOptimizer`` under ``mixed_float16``.

    Example:
        >>> adam = keras.optimizers.Adam(1e-2)
        >>> type(training_optimizer(adam, "mixed_float16")).__name__
        'LossScaleOptimizerV3'
        >>> training_optimizer(adam, "mixed_bfloat16") is adam
        True
    """
    if check_precision(precision) == "mixed_float16":
        return keras.mixed_precision.LossScaleOptimizer(optimizer)
    return optimizer
