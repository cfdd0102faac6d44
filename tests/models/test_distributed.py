"""tf.distribute: 2 mirrored replicas, 2 workers, a parameter-server cluster; against one device.

Each run is a subprocess (``tests.models.distributed_runs``): logical devices and TF_CONFIG must
be set before TensorFlow starts.
"""

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


def start_run(run: str, data: str, out: str, tf_config: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.models.distributed_runs", run, data, out],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def result_of(process: subprocess.Popen) -> dict:
    try:
        output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"distributed run timed out; output:\n{output[-4000:]}")
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"distributed run failed:\n{output[-4000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory) -> dict[str, Callable[[], dict]]:
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
        "parameter-server": [start_run("parameter-server", tiny_data, out["parameter-server"])],
    }
    collected: dict[str, list[dict]] = {}

    def results(name: str) -> list[dict]:
        if name not in collected:
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


def test_parameter_server_cluster_trains(runs) -> None:
    (result,), out = runs["parameter-server"]()
    assert result["servers"] == 3
    assert len(result["loss"]) == 2 and np.isfinite(result["loss"]).all()
    assert 0.0 <= result["joint_recall"] <= 1.0
    assert os.path.isfile(os.path.join(out, "model", "weights", "cascade.index"))
