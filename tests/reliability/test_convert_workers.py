"""Killing convert's main process (as the OOM killer does) takes its worker processes with it."""

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAIN = """
import os, sys, time
from dftopk_cascade.pipelines.convert import worker_pool
pool = worker_pool(2)
pids = {pool.submit(os.getpid).result() for _ in range(8)}
pids |= {pool.submit(os.getpid).result() for _ in range(8)}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(")")[-1].split()[0] != "Z"  # a zombie has died
    except FileNotFoundError:
        return False


def test_workers_die_when_the_main_process_is_killed() -> None:
    environment = {**os.environ, "PYTHONPATH": ROOT}
    main = subprocess.Popen(
        [sys.executable, "-c", MAIN], cwd=ROOT, env=environment, stdout=subprocess.PIPE, text=True
    )
    try:
        workers = [int(pid) for pid in main.stdout.readline().split()]
        assert workers and all(alive(pid) for pid in workers)
        main.send_signal(signal.SIGKILL)
        main.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in workers)
    finally:
        main.kill()
        for pid in workers if "workers" in locals() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
