"""Python code run in a fresh interpreter from the project root, for checks that must not share
the suite's process (logical devices set before TensorFlow starts, XLA compiler state).

Example (in a test module)::

    result = run_python_json("import json; print(json.dumps({'ok': True}))")
    assert result == {"ok": True}
"""

import json
import os
import subprocess
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -c code`` from the project root, on its path, with TensorFlow's C++ logs quiet."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def run_python_json(code: str, timeout: int = 300) -> Any:
    """Runs ``code`` (``run_python``), asserts that it succeeded and returns its last stdout line
    read as JSON."""
    completed = run_python(code, timeout)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
