"""Export time: a trained cascade as three TF Serving SavedModels, ``python -m
dftopk_cascade.serving.export``.

Nothing here runs in the serving process; the run-time modules
(``dftopk_cascade.serving.cascade_inference``, ``dftopk_cascade.serving.backends``,
``dftopk_cascade.serving.server``) read what it wrote.

- ``saved_models``: ``export_cascade`` and the command (``__main__``).
- ``servables``: the ``tf.Module`` of each stage with its ``serving_default`` signature;
  ``item_index``: retrieval's exact index over the corpus; ``vocabulary``: raw ids to embedding
  rows, inside the graph; ``item_corpus``: every distinct item of the converted data.
- ``graph_ops``: the check for ops stock TF Serving cannot run; ``publish``: the atomic,
  no-overwrite writer of the ``EXPORT/<model>/<version>/`` layout.
- ``toy_servables``: small exported servables and a small exported cascade, for examples.

Example:
    >>> from dftopk_cascade.serving.export_layout import version_dir
    >>> version_dir("/export", "rank", 3)
    '/export/rank/3'
"""
