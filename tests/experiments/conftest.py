"""Shared fixtures of the experiment tests: the method comparison's tiny dataset, made once."""

import pytest

from experiments.method_comparison import SIZES, prepare_data


@pytest.fixture(scope="session")
def tiny_comparison_data(tmp_path_factory) -> str:
    """The TFRecord folder of ``SIZES["tiny"]`` (4 simulated days x 256 requests), read only.

    Tests that train on it keep their models and records under their own folders.
    """
    return prepare_data(str(tmp_path_factory.mktemp("comparison")), SIZES["tiny"])


class FakeProcesses:
    """Stands in for ``subprocess.Popen`` in ``experiments.run_processes``: each "process"
    records its command, runs for ``polls`` looks and then ends with the status that
    ``exit_statuses`` gives its start's index (0 if none). ``most_at_once`` is the most alive at
    once."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self.exit_statuses: dict[int, int] = {}
        self.polls = 0
        self.alive = 0
        self.most_at_once = 0

    def __call__(self, command, **options):
        fake = self
        index = len(self.started)
        self.started.append(list(command))
        self.alive += 1
        self.most_at_once = max(self.most_at_once, self.alive)

        class Process:
            looks = 0
            returncode = None

            def poll(self):
                if self.returncode is None:
                    self.looks += 1
                    if self.looks > fake.polls:
                        self.returncode = fake.exit_statuses.get(index, 0)
                        fake.alive -= 1
                return self.returncode

            def wait(self):
                self.looks = max(self.looks, fake.polls)
                return self.poll()

        return Process()


@pytest.fixture
def fake_processes(monkeypatch) -> FakeProcesses:
    """Runs started by ``experiments.run_processes`` are recorded, not run; two CPUs to pin."""
    from experiments import run_processes

    fake = FakeProcesses()
    monkeypatch.setattr(run_processes.subprocess, "Popen", fake)
    monkeypatch.setattr(run_processes, "usable_cpus", lambda: [0, 1])
    monkeypatch.setattr(run_processes, "POLL_SECONDS", 0.0)
    return fake
