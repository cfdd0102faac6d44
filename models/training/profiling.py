"""``--profile-steps FIRST,LAST``: a TensorFlow profiler trace of a few training steps.

``ProfileSteps`` starts ``tf.profiler.experimental`` before training step FIRST and stops it after
step LAST (counted from 1 over the whole run, across epochs), writing the trace under
``MODEL_DIR/logs/profile/plugins/profile/<run>/*.xplane.pb``: TensorBoard's profile plugin shows
it as a timeline, and ``python -m benchmarks.step_profile`` sums it by stage. Skip the first
step or two: they include tracing and compilation.

Example:
    >>> parse_profile_steps("3,5")
    (3, 5)
"""

import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras


def parse_profile_steps(text: str) -> tuple[int, int]:
    """``"FIRST,LAST"`` (or one step ``"N"``) as a pair of steps counted from 1.

    Example:
        >>> parse_profile_steps("4")
        (4, 4)
        >>> parse_profile_steps("5,2")
        Traceback (most recent call last):
        ...
        ValueError: --profile-steps wants FIRST,LAST with 1 <= FIRST <= LAST, got '5,2'
    """
    parts = text.split(",")
    try:
        steps = tuple(int(part) for part in parts)
    except ValueError:
        steps = ()
    if len(steps) == 1:
        steps = steps * 2
    if len(steps) != 2 or not 1 <= steps[0] <= steps[1]:
        raise ValueError(f"--profile-steps wants FIRST,LAST with 1 <= FIRST <= LAST, got {text!r}")
    return steps


class ProfileSteps(keras.callbacks.Callback):
    """Profiles training steps ``first`` to ``last`` (from 1, across epochs) into ``log_dir``.

    Args:
        log_dir: the profiler's output folder (TensorBoard's ``--logdir``).
        first: the first profiled step.
        last: the last profiled step.

    Example:
        >>> callback = ProfileSteps("/tmp/run/logs/profile", 2, 3)
        >>> callback.first, callback.last
        (2, 3)
    """

    def __init__(self, log_dir: str, first: int, last: int):
        super().__init__()
        self.log_dir = log_dir
        self.first, self.last = parse_profile_steps(f"{first},{last}")
        self.step = 0
        self.running = False

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.step += 1
        if self.step == self.first:
            tf.profiler.experimental.start(self.log_dir)
            self.running = True

    def on_train_batch_end(self, batch, logs=None) -> None:
        if self.running and self.step == self.last:
            self._stop()

    def on_train_end(self, logs=None) -> None:
        if self.running:  # the run ended before the last profiled step
            self._stop()

    def _stop(self) -> None:
        tf.profiler.experimental.stop()
        self.running = False
