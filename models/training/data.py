"""Training and evaluation inputs: checked data folders, day splits and datasets.

The data is a folder written by ``python -m dftopk_cascade.pipelines.convert`` (read with
``dftopk_cascade.pipelines.input``). The paper's protocol trains on the first days in order and
tests on the next day, so by default the last converted day is held out for evaluation and every
earlier day is trained on. An epoch is one pass over the training days (``steps_per_pass``) unless
``--steps-per-epoch`` says otherwise; a run resumed after an interruption continues the input where
the killed run was (``training_input``'s ``skip_batches``), so it trains on what an uninterrupted
run would.

Example:
    >>> import tempfile
    >>> from dftopk_cascade.pipelines.data_schema import read_data_schema
    >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
    >>> folder = tempfile.TemporaryDirectory()  # two simulated days, converted
    >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
    >>> schema = read_data_schema(data_dir)
    >>> split_days(schema)
    (['2024-01-13'], ['2024-01-14'])
"""

import math
from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from dftopk_cascade.models.tf_keras import keras
from dftopk_cascade.pipelines.input import make_dataset


def split_days(
    schema: dict[str, Any],
    train_days: Sequence[str] | None = None,
    eval_days: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Training and evaluation days: given ones (checked), else all but the last, and the last.

    Example:
        >>> split_days({"days": {"2024-01-13": {}, "2024-01-14": {}, "2024-01-15": {}}})
        (['2024-01-13', '2024-01-14'], ['2024-01-15'])
    """
    days = list(schema["days"])
    if train_days is None and eval_days is None and len(days) < 2:
        raise ValueError(
            f"the data has only the day {days}: the protocol holds out the last day for "
            "evaluation, so convert at least 2 days or pass --train-days and --eval-days"
        )
    train_days = list(train_days) if train_days else days[:-1]
    eval_days = list(eval_days) if eval_days else days[-1:]
    check_days(schema, train_days + eval_days)
    return train_days, eval_days


def check_days(schema: dict[str, Any], days: Sequence[str]) -> None:
    """Raises ``ValueError`` naming the days that the data does not have.

    Example:
        >>> check_days({"days": {"2024-01-13": {}}}, ["2024-01-14"])
        Traceback (most recent call last):
        ...
        ValueError: days ['2024-01-14'] are not in the data (converted days: ['2024-01-13'])
    """
    unknown = sorted(set(days) - set(schema["days"]))
    if unknown:
        raise ValueError(
            f"days {unknown} are not in the data (converted days: {list(schema['days'])})"
        )


def request_count(schema: dict[str, Any], days: Sequence[str]) -> int:
    """Requests in ``days`` (from schema.json).

    Example:
        >>> request_count({"days": {"d1": {"requests": 5}, "d2": {"requests": 7}}}, ["d2"])
        7
    """
    return sum(int(schema["days"][day]["requests"]) for day in days)


def steps_per_pass(schema: dict[str, Any], days: Sequence[str], batch_size: int) -> int:
    """Batches in one pass over ``days`` (the last one may be smaller).

    Example:
        >>> steps_per_pass({"days": {"d1": {"requests": 2049}}}, ["d1"], 1024)
        3
    """
    return max(1, math.ceil(request_count(schema, days) / batch_size))


def training_input(
    data_dir: str,
    days: Sequence[str],
    batch_size: int,
    negatives: int,
    seed: int,
    skip_batches: int = 0,
    schema: dict[str, Any] | None = None,
) -> keras.utils.experimental.DatasetCreator:
    """The training input for ``model.fit`` under any strategy: shuffled passes, repeated.

    Each input pipeline (``tf.distribute.InputContext``) reads its share of the shards and
    batches ``batch_size`` / replicas requests; in-batch negatives come from that batch. The
    stream of batches is a pure function of the data and ``seed``; a resumed run passes the
    batches it already trained on as ``skip_batches`` and continues the same stream. ``schema``
    is the folder's schema when the caller has read it (``read_data_schema``), else read here.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
        >>> folder = tempfile.TemporaryDirectory()  # two simulated days, converted
        >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
        >>> creator = training_input(data_dir, ["2024-01-13"], 1024, 0, 42)
        >>> type(creator).__name__
        'DatasetCreator'
    """

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        dataset = make_dataset(
            data_dir,
            batch_size,
            negatives_per_request=negatives,
            shuffle=True,
            deterministic=True,
            input_context=input_context,
            days=days,
            seed=seed,
            schema=schema,
        )
        return dataset.repeat().skip(skip_batches)

    return keras.utils.experimental.DatasetCreator(dataset_fn)


def evaluation_dataset(
    data_dir: str,
    days: Sequence[str],
    batch_size: int,
    negatives: int,
    seed: int,
    schema: dict[str, Any] | None = None,
) -> tf.data.Dataset:
    """One pass over ``days`` in file order, ``negatives`` in-batch negatives per request.

    ``schema``: the folder's schema when the caller has read it, else read here.

    Example:
        >>> import tempfile
        >>> from dftopk_cascade.pipelines.simulator.simulated_tfrecords import simulated_tfrecords
        >>> folder = tempfile.TemporaryDirectory()  # two simulated days, converted
        >>> data_dir = simulated_tfrecords(folder.name, days=2, requests_per_day=64)
        >>> features, labels = next(iter(evaluation_dataset(data_dir, ["2024-01-14"], 8, 16, 42)))
        >>> features["items"].shape.as_list()
        [8, 56, 8]
    """
    return make_dataset(
        data_dir,
        batch_size,
        negatives_per_request=negatives,
        shuffle=False,
        deterministic=True,
        days=days,
        seed=seed,
        schema=schema,
    )
