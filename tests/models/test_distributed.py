"""tf.distribute: 2 mirrored replicas, 2 workers, a parameter-server cluster; against one device.

Each run is a subprocess (``tests.models.distributed_runs``): logical devices and TF_CONFIG must
be set before TensorFlow starts. The parameter-server cluster is four
``python -m dftopk_cascade.models.training.train`` processes (chief, 2 workers, ps), as a user
starts it.
"""

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from tests.models.distributed_runs import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_SECONDS = 400
RUN_NAMES = ("mirrored", "multiworker", "parameter-server")


def start_module(module_args: list[str], tf_config: dict | None) -> subprocess.Popen:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-m", *module_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_run(run: str, data: str, out: str, tf_config: dict | None = None) -> subprocess.Popen:
    return start_module(["tests.models.distributed_runs", run, data, out], tf_config)


def start_parameter_server_cluster(data: str, out: str) -> list[subprocess.Popen]:
    """The user's path: the same ``dftopk_cascade.models.training.train`` command on every task,
    roles from TF_CONFIG.

    Returns the chief (the coordinator, which trains and exits) first, then the 2 workers and the
    ps, which serve until killed.
    """
    cluster = {
        "chief": [f"127.0.0.1:{free_port()}"],
        "worker": [f"127.0.0.1:{free_port()}" for _ in range(2)],
        "ps": [f"127.0.0.1:{free_port()}"],
    }
    command = [
        "dftopk_cascade.models.training.train",
        "--data",
        data,
        "--model-dir",
        os.path.join(out, "model"),
    ]
    command += ["--strategy", "parameter-server", "--method", "bce", "--embedding-dim", "4"]
    command += ["--batch-size", "40", "--epochs", "2", "--steps-per-epoch", "2"]
    command += ["--eval-batch-size", "60", "--eval-negatives", "8", "--quiet"]
    return [
        start_module(command, {"cluster": cluster, "task": {"type": job, "index": index}})
        for job in ("chief", "worker", "ps")
        for index in range(len(cluster[job]))
    ]


def output_of(process: subprocess.Popen) -> str:
    """The output of a process that exits by itself; fails the test on a timeout or an error."""
    try:
        output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"distributed run timed out; output:\n{output[-4000:]}")
    assert process.returncode == 0, f"distributed run failed:\n{output[-4000:]}"
    return output


def result_of(process: subprocess.Popen) -> dict:
    lines = [line for line in output_of(process).splitlines() if line.startswith("RESULT ")]
    assert lines, "the run printed no RESULT line"
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> dict[str, Callable[[], tuple[list, str]]]:
    """Starts every distributed run at once (they overlap their waits); results on demand."""
    out = {name: str(tmp_path_factory.mktemp(name)) for name in RUN_NAMES}
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    processes = {
        "mirrored": [start_run("mirrored", tiny_data, out["mirrored"])],
        "multiworker": [
            start_run(
                "multiworker",
                tiny_data,
                out["multiworker"],
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}},
            )
            for index in range(2)
        ],
        "parameter-server": start_parameter_server_cluster(tiny_data, out["parameter-server"]),
    }
    collected: dict[str, list] = {}

    def results(name: str) -> list:
        if name not in collected:
            if name == "parameter-server":
                # Only the chief exits; its output is the command's, the model folder the rest.
                collected[name] = [output_of(processes[name][0])]
            else:
                collected[name] = [result_of(process) for process in processes[name]]
        return collected[name]

    yield {name: (lambda name=name: (results(name), out[name])) for name in RUN_NAMES}
    for started in processes.values():
        for process in started:
            if process.poll() is None:
                process.kill()


def test_mirrored_over_two_cpus_matches_one_device(runs) -> None:
    (result,), _ = runs["mirrored"]()
    assert result["replicas"] == 2
    assert "run without --run-eagerly" in result["eager_mirrored_error"]
    np.testing.assert_allclose(result["mirrored"], result["cpu"], rtol=1e-4)
    own, other = range(1, 41), range(1001, 1041)
    first, second = result["per_replica_sources"]
    assert set(first) <= set(own) and set(second) <= set(other)
    first, second = result["cross_replica_sources"]
    assert set(first) & set(other) and set(second) & set(own)


def test_two_workers_match_one_device(runs) -> None:
    (chief, other), out = runs["multiworker"]()
    assert chief["chief"] and not other["chief"]
    assert chief["replicas"] == other["replicas"] == 2
    np.testing.assert_allclose(chief["distributed"], chief["single_device"], rtol=1e-4)
    np.testing.assert_allclose(other["distributed"], chief["distributed"], rtol=1e-6)
    np.testing.assert_allclose(other["train_loss"], chief["train_loss"], rtol=1e-6)
    model_dir = os.path.join(out, "model")
    assert os.path.isfile(os.path.join(model_dir, "weights", "cascade.index"))
    assert os.path.isfile(os.path.join(model_dir, "metrics.json"))
    assert os.path.isfile(os.path.join(model_dir, "history.csv"))


def test_parameter_server_cluster_of_separate_processes_trains(runs) -> None:
    (chief_output,), out = runs["parameter-server"]()
    model_dir = os.path.join(out, "model")
    assert f"model folder: {model_dir}" in chief_output
    with open(os.path.join(model_dir, "history.csv")) as file:
        losses = [float(row["loss"]) for row in csv.DictReader(file)]
    assert len(losses) == 2 and np.isfinite(losses).all()
    with open(os.path.join(model_dir, "metrics.json")) as file:
        assert 0.0 <= json.load(file)["joint_recall"] <= 1.0
    assert os.path.isfile(os.path.join(model_dir, "weights", "cascade.index"))
