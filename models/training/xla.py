"""Whether the train and test steps are compiled with XLA (``--jit-compile auto|on|off``).

``auto`` compiles them (``model.compile(jit_compile=True)``) where every device of the strategy is
a GPU or TPU, and leaves them to TensorFlow's graph executor on CPUs: there XLA's own matrix
products replace oneDNN's and the cascade's step gets slower (``CHANGELOG.md``, 2026-11-26,
"Where a training step's time goes"), while on a GPU XLA fuses the elementwise work of the
towers into their kernels. ``on`` and ``off`` force the choice. The top-k operators compile
their own inner loops with XLA either way (``dftopk_tf.ops``), as does the dense embedding gradient
(``dftopk_cascade.models.sparse_gradients``).

XLA cannot compile a step mirrored over several CPU devices (each replica's variables live on a
logical CPU that XLA's CPU device does not address); ``on`` there is refused with a clear error.

Exported serving graphs never carry the flag: ``dftopk_cascade.serving.export`` traces the stage
models afresh, and its check (``dftopk_cascade.serving.export.graph_ops``) refuses any XLA-marked
function.

The optimizer's variable updates are compiled with XLA wherever the step's devices and the
tables' sizes allow it (``compile_optimizer_updates``), whatever ``--jit-compile`` says: tf-keras
does so on GPUs only, yet on a CPU TensorFlow's executor runs Adam's update of a large embedding
table as separate passes over the table and its two moments, which XLA fuses. The step then gives
every table a dense gradient (``dftopk_cascade.models.sparse_gradients.dense_gradient_limit``):
a sparse one would make XLA compile the update again at every step.

Example:
    >>> use_xla("off", tf.distribute.get_strategy())
    False
"""

from collections.abc import Sequence

import tensorflow as tf
from dftopk_cascade.models.sparse_gradients import XLA_DENSE_GRADIENT_MAX_ELEMENTS
from dftopk_cascade.models.tf_keras import keras

#: The ``--jit-compile`` choices.
JIT_COMPILE_CHOICES: tuple[str, ...] = ("auto", "on", "off")
_ACCELERATORS = ("GPU", "TPU")


def strategy_devices(strategy: tf.distribute.Strategy) -> list[str]:
    """The device names the strategy's replicas run on, on this worker.

    Example:
        >>> strategy_devices(tf.distribute.get_strategy())
        ['/device:CPU:0']
    """
    try:
        devices = list(strategy.extended.worker_devices)
    except (RuntimeError, NotImplementedError, AttributeError):
        devices = []  # the default strategy: TensorFlow places ops, accelerators first
    if devices:
        return [tf.DeviceSpec.from_string(device).to_string() for device in devices]
    accelerators = [
        device.name for kind in _ACCELERATORS for device in tf.config.list_logical_devices(kind)
    ]
    return accelerators[:1] or [tf.config.list_logical_devices("CPU")[0].name]


def use_xla(choice: str, strategy: tf.distribute.Strategy) -> bool:
    """Resolves ``--jit-compile`` for ``strategy``; ``ValueError`` on an impossible ``on``.

    Example:
        >>> use_xla("auto", tf.distribute.get_strategy())  # a CPU machine
        False
        >>> use_xla("fast", tf.distribute.get_strategy())
        Traceback (most recent call last):
        ...
        ValueError: unknown --jit-compile choice 'fast'; expected one of auto, on, off
    """
    if choice not in JIT_COMPILE_CHOICES:
        raise ValueError(
            f"unknown --jit-compile choice {choice!r}; expected one of "
            f"{', '.join(JIT_COMPILE_CHOICES)}"
        )
    devices = [tf.DeviceSpec.from_string(device) for device in strategy_devices(strategy)]
    cpus = [device for device in devices if device.device_type == "CPU"]
    if choice == "on" and len(cpus) > 1:
        raise ValueError(
            f"XLA cannot compile a step mirrored over {len(cpus)} CPU devices (each replica's "
            "variables live on a logical CPU that XLA does not address); use --jit-compile "
            "off or auto"
        )
    if choice == "auto":
        return bool(devices) and all(device.device_type in _ACCELERATORS for device in devices)
    return choice == "on"


def xla_optimizer_updates(
    strategy: tf.distribute.Strategy, variables: Sequence[tf.Variable]
) -> bool:
    """Whether the optimizer's updates of ``variables`` can be compiled with XLA under
    ``strategy``: not in a step mirrored over several CPU devices (which XLA does not address),
    nor with a table too large for a dense gradient (``XLA_DENSE_GRADIENT_MAX_ELEMENTS``).

    Example:
        >>> xla_optimizer_updates(tf.distribute.get_strategy(), [tf.Variable(tf.zeros([4, 2]))])
        True
    """
    devices = [tf.DeviceSpec.from_string(device) for device in strategy_devices(strategy)]
    one_cpu_at_most = sum(device.device_type == "CPU" for device in devices) <= 1
    sizes = [variable.shape.num_elements() for variable in variables]
    return one_cpu_at_most and all(
        size is not None and size <= XLA_DENSE_GRADIENT_MAX_ELEMENTS for size in sizes
    )


def compile_optimizer_updates(
    optimizer: keras.optimizers.Optimizer,
    strategy: tf.distribute.Strategy,
    variables: Sequence[tf.Variable],
) -> keras.optimizers.Optimizer:
    """``optimizer``, its updates of ``variables`` compiled with XLA where that is possible
    (``xla_optimizer_updates``).

    tf-keras's optimizers take ``jit_compile=True`` but drop it where no GPU is visible; this sets
    the optimizer's own flag after construction, so its ``_update_step_xla`` (the same
    ``update_step``, traced by XLA) runs on a CPU too. The update is Adam's formula either way;
    only float rounding can differ (``tests/models/test_step_compilation.py``).

    Example:
        >>> adam = keras.optimizers.Adam(1e-2)
        >>> table = tf.Variable(tf.zeros([4, 2]))
        >>> compile_optimizer_updates(adam, tf.distribute.get_strategy(), [table]).jit_compile
        True
    """
    optimizer.jit_compile = xla_optimizer_updates(strategy, variables)
    return optimizer
