"""Training machinery around the models: ``python -m models.training.train`` and ``.evaluate``.

- ``train``, ``evaluate``: the commands; ``data``: their inputs from ``pipelines.input``.
- ``model_dir``: the layout of a trained model's folder; ``strategies``: ``tf.distribute`` set-up.
- ``callbacks``: backup and resume, TensorBoard summaries; ``xla``: whether the steps are
  compiled with XLA; ``profiling``: profiler traces of chosen training steps.

Example:
    >>> from models.model_folder import ModelDir
    >>> ModelDir("/tmp/model").config_path
    '/tmp/model/config.json'
"""
