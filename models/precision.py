"""Mixed precision training (``--mixed-precision off|mixed_float16|mixed_bfloat16``).

The cascade is built under the chosen Keras policy (``mixed_precision_policy``): its layers compute
in float16 or bfloat16 and keep float32 variables; the scores and embeddings leave the model as
float32 and the objectives compute in float32 (``dftopk_cascade.models.cascade``,
``dftopk_cascade.models.objectives``). Under ``mixed_float16`` the optimizer is wrapped in a
``LossScaleOptimizer`` (``training_optimizer``) and the train step scales the loss, so small
gradients do not underflow; bfloat16 has float32's exponent range and needs no scaling. The policy
is set only while the model is built, so nothing else in the process changes, and the saved weights
are float32 either way: evaluation and export rebuild the model under the default float32 policy.

``mixed_float16`` is for GPUs with tensor cores; ``mixed_bfloat16`` for TPUs and CPUs with AVX-512
BF16 or AMX. A CPU without them (AVX2 only, for one) converts every bfloat16 product in software,
so there ``mixed_bfloat16`` can be slower than float32: ``mixed_precision_policy`` warns when the
CPU lacks native bfloat16 (``native_bfloat16_cpu``); CHANGELOG.md gives the times measured on both
kinds. The default is ``off``: half precision changes the numerics, so it is opt-in.

Example:
    >>> with mixed_precision_policy("mixed_bfloat16"):
    ...     keras.layers.Dense(2).compute_dtype
    'bfloat16'
    >>> keras.mixed_precision.global_policy().name
    'float32'
"""

import contextlib
import warnings
from collections.abc import Iterator

from dftopk_cascade.models.tf_keras import keras

from dftopk_tf.instruction_sets import cpu_flags

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


#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic: AVX-512 BF16 or AMX.
NATIVE_BFLOAT16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})


def native_bfloat16_cpu(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU (``flags``, default this one's) computes bfloat16 natively.

    Example:
        >>> native_bfloat16_cpu(frozenset({"avx2", "fma"}))
        False
    """
    return bool(NATIVE_BFLOAT16_FLAGS & (cpu_flags() if flags is None else flags))


@contextlib.contextmanager
def mixed_precision_policy(precision: str) -> Iterator[None]:
    """Sets Keras' global dtype policy for the block (``off``: float32), then restores it.

    Under ``mixed_bfloat16`` on a CPU without native bfloat16 it first warns that the run may
    be slower than float32 (where no GPU or TPU takes the work).

    Example:
        >>> with mixed_precision_policy("off"):
        ...     keras.mixed_precision.global_policy().name
        'float32'
    """
    check_precision(precision)
    if precision == "mixed_bfloat16" and not native_bfloat16_cpu():
        warnings.warn(
            "--mixed-precision mixed_bfloat16: this CPU has neither AVX-512 BF16 nor AMX, so "
            "bfloat16 runs emulated and a CPU run may be slower than float32 (CHANGELOG.md); use "
            "--mixed-precision off on this machine unless a GPU or TPU trains",
            stacklevel=3,
        )
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
