"""Convert refuses what would turn into believable wrong results or half-written output.

Issue 29 item 8 (NaN or inf ``true_preference`` refused, naming the day and the row), item 9
(a full disk: one line naming the path and the free space, nothing half-written left) and the
small item (``--workers 0`` and ``-3`` refused).
"""

import os
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pytest
import tensorflow as tf
from dftopk_cascade.command_line.entry import USER_ERROR_EXIT_CODE, run_command
from dftopk_cascade.pipelines import example_format as fmt
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.atomic_files import no_space_for
from dftopk_cascade.pipelines.convert import main
from dftopk_cascade.pipelines.data_schema import read_data_schema

from tests.pipelines.recflow_fixtures import convert_small, simulate_small, tree


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> str:
    return simulate_small(str(tmp_path_factory.mktemp("sim") / "recflow"))


@pytest.fixture
def copy(simulated, tmp_path) -> str:
    path = str(tmp_path / "recflow")
    shutil.copytree(simulated, path)
    return path


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_true_preference_is_refused_naming_the_day_and_row(copy, tmp_path, bad_value):
    path = recflow.day_file(copy, recflow.ALL_STAGE_DIR, "2024-01-14")
    table = feather.read_table(path)
    preference = table.column(recflow.TRUE_PREFERENCE).to_numpy().copy()
    preference[1234] = bad_value
    index = table.schema.get_field_index(recflow.TRUE_PREFERENCE)
    table = table.set_column(index, recflow.TRUE_PREFERENCE, pa.array(preference, pa.float32()))
    feather.write_feather(table, path)
    request = table.column(recflow.REQUEST_ID)[1234].as_py()
    out = str(tmp_path / "tfrec")
    with pytest.raises(recflow.RecFlowError) as error:
        convert_small(copy, out)
    message = str(error.value)
    assert message.startswith(path) and "2024-01-14" in message
    assert f"first at row 1234 (request {request}: {bad_value:g})" in message
    assert not os.path.exists(fmt.schema_path(out))


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_workers_below_one_are_refused(simulated, tmp_path, capsys, workers):
    out = str(tmp_path / "tfrec")
    arguments = ["--recflow", simulated, "--data", out, "--workers", workers, "--quiet"]
    with pytest.raises(SystemExit) as exit_code:
        run_command(main, "python -m dftopk_cascade.pipelines.convert", arguments)
    assert exit_code.value.code == USER_ERROR_EXIT_CODE
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--workers must be >= 1" in error and workers in error
    assert not os.path.exists(out)


REAL_WRITER = tf.io.TFRecordWriter


class FillingWriter:
    """A TFRecordWriter whose disk fills up after ``records`` records (as TF reports it)."""

    records = 60

    def __init__(self, path: str, options: tf.io.TFRecordOptions) -> None:
        self._writer = REAL_WRITER(path, options)
        self._path = path

    def __enter__(self) -> "FillingWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self._writer.close()

    def write(self, record: bytes) -> None:
        FillingWriter.records -= 1
        if FillingWriter.records < 0:
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{self._path}; No space left on device"
            )
        self._writer.write(record)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(
    simulated, tmp_path, capsys, monkeypatch
):
    out = str(tmp_path / "tfrec")
    monkeypatch.setattr(FillingWriter, "records", 60)  # a shard holds 50: the second one fills up
    monkeypatch.setattr(fmt.tf.io, "TFRecordWriter", FillingWriter)
    arguments = ["--recflow", simulated, "--data", out, "--workers", "1", "--quiet"]
    arguments += ["--requests-per-shard", "50"]
    with pytest.raises(SystemExit) as exit_code:
        run_command(main, "python -m dftopk_cascade.pipelines.convert", arguments)
    assert exit_code.value.code == USER_ERROR_EXIT_CODE
    error = capsys.readouterr().err
    second_shard = os.path.join(out, "2024-01-13", "part-00001-of-00003.tfrecord.gz")
    assert error.count("\n") == 1
    assert f"{second_shard}: no space left on device (" in error and "bytes free in" in error
    assert not any(name.endswith(".tmp") for name in tree(out))
    assert not os.path.exists(fmt.schema_path(out)) and not os.path.exists(second_shard)

    monkeypatch.undo()  # space freed: the re-run finishes the conversion
    assert convert_small(simulated, out).requests == 240
    assert read_data_schema(out)["counts"]["shards"] == 6


def test_a_disk_full_error_survives_the_trip_from_a_worker_process(tmp_path):
    error = no_space_for(str(tmp_path / "shard"))
    copied = pickle.loads(pickle.dumps(error))
    assert str(copied) == str(error) and copied.path == error.path
