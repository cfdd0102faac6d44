"""Cascade recommender models trained end to end with DFTopK: retrieval -> pre-ranking -> ranking.

Modules, from the building blocks up:

- ``embeddings``: one embedding table per id field, shared by every feature holding the field;
  ``sparse_gradients``: dense gradients for small tables.
- ``towers``: MLP towers and masked mean pooling; ``attention``: DIN-style target attention.
- ``retrieval``: the TFRS two-tower model (``tfrs.Model``), dot-product scores;
  ``in_batch_softmax``: its sampled-softmax task (``tfrs.tasks.Retrieval``), the TFRS baseline.
- ``prerank``: DIN-style pre-ranking; ``rank``: DCN-v2 ranking.
- ``config``: ``CascadeConfig``, everything needed to rebuild a trained cascade (JSON).
- ``objectives``: the training methods by name (``--method``): top-k cascade losses and TFRS.
- ``cascade``: ``CascadeModel`` (``tfrs.Model``) holding the stages and the objective.
- ``model_folder``: ``ModelDir``, the layout of a trained model's folder; ``precision``: the
  mixed precision policy the stages are built under.
- ``training``, the machinery around the models: ``strategies``: ``tf.distribute`` set-up;
  ``data``: the training and evaluation inputs from ``dftopk_cascade.pipelines.input``; ``xla``:
  whether the steps are compiled with XLA; ``profiling``: profiler traces of chosen training steps;
  ``train`` (``python -m dftopk_cascade.models.training.train``), ``evaluate`` (``python -m
  dftopk_cascade.models.training.evaluate``).

TFRS needs tf-keras, so importing this package selects it (``TF_USE_LEGACY_KERAS=1``) unless the
environment chose otherwise; it must happen before TensorFlow is imported.

Example:
    >>> from dftopk_cascade.models.cascade import build_cascade, load_cascade
    >>> from dftopk_cascade.models.config import CascadeConfig
    >>> from dftopk_cascade.models.contract import zero_features
    >>> config = CascadeConfig.for_examples(method="bce")
    >>> model = build_cascade(config)  # or load_cascade(MODEL_DIR) for a trained one
    >>> sorted(model(zero_features(batch_size=4)))  # each stage's scores, [B, N]
    ['prerank', 'rank', 'retrieval']
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from dftopk_cascade.command_line.start_up import quiet_module_start_up

quiet_module_start_up()  # `python -m models.<command>`: hide TensorFlow's start-up lines
