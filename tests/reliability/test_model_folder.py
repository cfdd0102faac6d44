"""dftopk_cascade.models.training.train writes only into a model folder it owns; --overwrite clears
only its manifest; an unfinished run says how to finish."""

import os
import shlex

import pytest
from dftopk_cascade.models.model_folder import ModelDir
from dftopk_cascade.models.training import evaluate
from dftopk_cascade.models.training.train import (
    TrainOptions,
    claim_model_dir,
    evaluation_command,
    prepare_model_dir,
    run_training,
)
from dftopk_cascade.pipelines.data_schema import read_data_schema
from dftopk_cascade.pipelines.owned_folder import ForeignFolderError, read_marker

from tests.models.test_train import tiny_options


@pytest.fixture
def config(tiny_data):
    return TrainOptions(tiny_data, "unused").cascade_config(read_data_schema(tiny_data))


def _prepare(path: str, config, overwrite: bool = False, precision: str = "off", **kwargs) -> None:
    with claim_model_dir(path, overwrite) as folder:
        prepare_model_dir(folder, config, precision=precision, **kwargs)


def _snapshot(root) -> dict[str, bytes]:
    """The user's files under ``root`` (relative path: bytes), without this project's own marker
    and lock files (``.dftopk-*``)."""
    files = [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]
    return {
        os.path.relpath(path, root): open(path, "rb").read()
        for path in files
        if not os.path.basename(path).startswith(".dftopk-")
    }


def test_plain_train_leaves_a_users_weights_and_history_alone(tiny_data, tmp_path) -> None:
    folder = tmp_path / "u"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "my.h5").write_text("hi")
    (folder / "history.csv").write_text("epoch,mine\n0,1\n")
    before = _snapshot(folder)
    with pytest.raises(ForeignFolderError, match=r"u is not empty .*nothing was changed"):
        run_training(tiny_options(tiny_data, str(folder)))
    assert _snapshot(folder) == before


def test_overwrite_leaves_a_foreign_folder_with_a_config_json_alone(tiny_data, tmp_path) -> None:
    web_app = tmp_path / "web_app"
    (web_app / "logs").mkdir(parents=True)
    (web_app / "logs" / "access.log").write_text("GET /")
    (web_app / "config.json").write_text('{"port": 8080}')
    (web_app / "metrics.json").write_text("{}")
    before = _snapshot(web_app)
    with pytest.raises(ForeignFolderError, match=r"has no \.dftopk-model\.json marker"):
        run_training(tiny_options(tiny_data, str(web_app), overwrite=True))
    assert _snapshot(web_app) == before


def test_overwrite_refuses_the_data_folder(tiny_data) -> None:
    with pytest.raises(ValueError, match="is the --data folder"):
        run_training(tiny_options(tiny_data, tiny_data, overwrite=True))
    assert read_data_schema(tiny_data)["counts"]["requests"] == 240


def test_overwrite_clears_only_the_manifest_of_our_folder(config, tiny_data, tmp_path) -> None:
    layout = ModelDir(str(tmp_path / "model"))
    _prepare(layout.root, config, data_dir=tiny_data)
    os.makedirs(layout.weights_dir)
    open(layout.weights_prefix + ".index", "w").close()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    _prepare(layout.root, config, overwrite=True, data_dir=tiny_data)
    assert not layout.has_weights()
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"
    assert read_marker(layout.root, "model")["manifest"] == sorted(layout.entries())


def test_a_run_is_resumed_only_with_its_mixed_precision(config, tmp_path) -> None:
    layout = ModelDir(str(tmp_path / "model"))
    _prepare(layout.root, config, precision="mixed_float16")
    _prepare(layout.root, config, precision="mixed_float16")  # same: resumes
    with pytest.raises(ValueError, match="--mixed-precision mixed_float16; resume it with that"):
        _prepare(layout.root, config, precision="off")
    _prepare(layout.root, config, overwrite=True, precision="off")  # --overwrite starts over
    assert layout.recorded_precision() == "off"


def test_a_run_stopped_before_evaluation_names_the_full_command_that_finishes_it(
    tiny_data, tmp_path
) -> None:
    options = tiny_options(
        tiny_data, str(tmp_path / "model"), eval_batch_size=30, eval_negatives=4, seed=7
    )
    config = options.cascade_config(read_data_schema(tiny_data))
    layout = ModelDir(options.model_dir)
    _prepare(layout.root, config, data_dir=tiny_data)
    os.makedirs(layout.weights_dir)
    open(layout.weights_prefix + ".index", "w").close()  # killed after saving the weights
    hint = evaluation_command(options, ["2024-01-14"])
    with pytest.raises(ValueError) as error:
        run_training(options)
    assert hint in str(error.value)
    # The hinted command evaluates exactly as the run would have.
    args = evaluate.parse_args(shlex.split(hint)[3:])
    assert (args.data_dir, args.model_dir, args.days) == (tiny_data, layout.root, ["2024-01-14"])
    assert (args.batch_size, args.negatives, args.seed) == (30, 4, 7)
