"""RecFlow data: schema and readers, a RecFlow-format simulator, TFRecord conversion, tf.data input.

Modules, in the order data flows through them:

- ``recflow``: the published RecFlow layout (folders, files, column names, dtypes) and its
  validating readers. The only module that spells a RecFlow column name.
- ``simulator`` (``python -m dftopk_cascade.pipelines.simulator.simulate``): writes a RecFlow-format
  dataset from a latent user-interest model driving a simulated cascade (``simulated_world``,
  ``simulated_cascade``).
- ``recflow_day``: one RecFlow day assembled into request-aligned arrays.
- ``convert`` (``python -m dftopk_cascade.pipelines.convert``): RecFlow days -> sharded GZIP
  TFRecords.
- ``simulator.simulated_tfrecords``: a small simulated dataset, converted, in one call (examples,
  tests).
- ``example_format``: the TFRecord feature names, the ``tf.train.Example`` encoder and parser.
- ``shard_integrity``: each shard's size and sha256, recorded by convert and checked by readers.
- ``data_schema``: ``read_data_schema``, the validated ``schema.json`` of a converted folder, and
  ``shard_paths``, its checked shard files.
- ``input``: ``make_dataset`` (the tf.data pipeline the models consume).
- ``labels`` and ``negatives``: the protocol's per-item labels and in-batch negative sampling.
- ``movielens`` (``python -m dftopk_cascade.pipelines.movielens.convert``): real data,
  MovieLens-100K read out of the pinned ``recbole`` wheel, converted to the same TFRecord folder
  layout.

Example:
    >>> from dftopk_cascade.pipelines.input import make_dataset
    >>> features, labels = next(iter(make_dataset(data_dir, batch_size=32)))
    >>> sorted(features), sorted(labels)
    (['context', 'item_mask', 'items', 'seq', 'seq_mask', 'stage', 'user'], ['label', 'preference'])
"""

from dftopk_cascade.command_line.start_up import quiet_module_start_up

quiet_module_start_up()  # `python -m pipelines.<command>`: hide TensorFlow's start-up lines
