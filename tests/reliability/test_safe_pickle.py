"""RecFlow pickles are loaded without running code: a crafted file is refused, naming it."""

import os
import pickle

import numpy as np
import pytest
from dftopk_cascade.pipelines import recflow
from dftopk_cascade.pipelines.recflow_day import load_day

from tests.pipelines.recflow_fixtures import simulate_small


class RunsCode:
    """Unpickling it would call ``os.system`` (what an attacker's file does)."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("folder", [recflow.REQUEST_DICT_DIR, recflow.SEQUENCE_DIR])
def test_a_crafted_pickle_is_refused_naming_the_file(tmp_path, folder, monkeypatch) -> None:
    root = simulate_small(str(tmp_path / "recflow"))
    monkeypatch.chdir(tmp_path)
    path = recflow.day_file(root, folder, "2024-01-13")
    with open(path, "wb") as file:
        pickle.dump({1: RunsCode()}, file)
    with pytest.raises(recflow.RecFlowError, match=rf"{path}: the pickle names posix\.system"):
        load_day(root, "2024-01-13")
    assert not (tmp_path / "PWNED").exists()


def test_numpy_data_of_either_numpy_spelling_still_loads(tmp_path) -> None:
    value = {7: np.arange(6, dtype=np.int64).reshape(2, 3), "n": np.int32(3), "f": 0.5}
    path = str(tmp_path / "data.pkl")
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=2)
    loaded = recflow.read_pickle_dict(path)
    np.testing.assert_array_equal(loaded[7], value[7])
    assert loaded["n"] == 3 and loaded["n"].dtype == np.int32 and loaded["f"] == 0.5
    with open(path, "wb") as file:  # numpy 1's module path, as in the published files
        file.write(pickle.dumps(value, protocol=2).replace(b"numpy._core", b"numpy.core"))
    np.testing.assert_array_equal(recflow.read_pickle_dict(path)[7], value[7])
