"""Training machinery around the models: ``python -m dftopk_cascade.models.training.train`` and
``.evaluate``.

- ``train``, ``evaluate``: the commands; ``data``: their inputs from
  ``dftopk_cascade.pipelines.input``.
- ``strategies``: ``tf.distribute`` set-up (the model folder's layout is
  ``dftopk_cascade.models.model_folder``).
- ``callbacks``: backup and resume, TensorBoard summaries; ``xla``: whether the steps are
  compiled with XLA; ``profiling``: profiler traces of chosen training steps.

Example:
    >>> from dftopk_cascade.models.training.strategies import STRATEGY_NAMES
    >>> "multiworker" in STRATEGY_NAMES
    True
"""
