"""serving: SavedModel export of the cascade and cascade inference, embedded or over TF Serving.

- ``python -m dftopk_cascade.serving.export``: retrieval, prerank and rank SavedModels in the TF
  Serving layout.
- ``dftopk_cascade.serving.cascade_inference.Cascade``: retrieval top-N -> pre-rank to M -> rank to
  K over one backend (``dftopk_cascade.serving.backends``: ``local``, ``rest``, ``grpc``).
- ``python -m dftopk_cascade.serving.server``: the HTTP front, ``POST /v1/recommend``, ``GET
  /healthz`` (liveness) and ``GET /readyz`` (readiness, ``dftopk_cascade.serving.readiness``).

The signatures are those of docs/CONTRACTS.md ("Serving signatures"), written down once in
``dftopk_cascade.serving.signatures``.

Example:
    >>> from dftopk_cascade.serving.backends import LocalBackend
    >>> from dftopk_cascade.serving.cascade_inference import Cascade
    >>> from dftopk_cascade.serving.export.toy_servables import toy_cascade_export, toy_request
    >>> export_dir = toy_cascade_export()  # or the EXPORT folder of python -m serving.export
    >>> cascade = Cascade(LocalBackend(export_dir), 200, 50, 10)
    >>> cascade.recommend(toy_request()).item_ids.shape
    (1, 10)

The export rebuilds the TFRS models of ``models/``, which need tf-keras: importing this package
selects it (``TF_USE_LEGACY_KERAS=1``) unless the environment chose otherwise, before TensorFlow is
imported.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from dftopk_cascade.command_line.start_up import quiet_module_start_up

quiet_module_start_up()  # `python -m serving.<command>`: hide TensorFlow's start-up lines
