"""scripts/test.sh, what CI runs: every test file of the repository is in one of its runs."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _targets() -> list[str]:
    """Every pytest target named in scripts/test.sh's runs (folders, files, node ids)."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    return re.findall(r"tests/[\w/.:]+", script)


def test_every_test_file_is_in_a_run_of_the_test_script():
    targets = [target.split("::")[0].rstrip("/") for target in _targets()]
    left_out = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        if not any(
            str(path.relative_to(ROOT)) == target
            or str(path.relative_to(ROOT)).startswith(target + "/")
            for target in targets
        )
    ]
    assert left_out == [], f"test files no run of scripts/test.sh covers: {left_out}"


def test_every_target_of_the_test_script_exists():
    missing = [t for t in _targets() if not (ROOT / t.split("::")[0]).exists()]
    assert missing == []
