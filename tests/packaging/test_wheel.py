"""The wheel a user installs: namespaced packages only, ranged dependencies, working commands.

Builds the wheel from this checkout, installs it with pip into a new virtual environment that
sees the test environment's third-party packages but not this project's editable install, and
uses it from a folder outside the repository.
"""

import email.parser
import importlib.util
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Top-level names the wheel may install.
NAMESPACED = {"dftopk_tf", "dftopk_cascade"}
#: The repository's generic folder names: none may land in site-packages.
GENERIC = {"models", "pipelines", "serving", "command_line", "benchmarks", "experiments"}
GENERIC |= {"examples", "tests", "scripts", "docs"}
PIP = [sys.executable, "-m", "pip"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    """The wheel built from this checkout (no build isolation: setuptools from the lock file)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(out),
            ROOT,
        ],
        check=True,
        cwd=str(out),
    )
    (path,) = [os.path.join(out, name) for name in os.listdir(out) if name.endswith(".whl")]
    return path


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory, wheel) -> str:
    """A new virtual environment with the wheel installed by pip; returns its folder."""
    env = str(tmp_path_factory.mktemp("venv"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True)
    site = subprocess.run(
        [os.path.join(env, "bin", "python"), "-c", "import site; print(site.getsitepackages()[0])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Third-party packages (TensorFlow, ...) from the test environment; the .pth files there, and
    # so this project's editable install, are not processed from a path added this way.
    with open(os.path.join(site, "third_party.pth"), "w") as file:
        file.write("\n".join(sorted(_third_party_folders())) + "\n")
    subprocess.run(
        [*PIP, "--python", os.path.join(env, "bin", "python"), "install", "--no-deps", wheel],
        check=True,
    )
    return env


def _third_party_folders() -> set[str]:
    """The site-packages folders that hold the dependencies of the library and its commands."""
    folders = set()
    for name in ("tensorflow", "numpy", "pandas", "tqdm"):
        origin = importlib.util.find_spec(name).origin
        folders.add(os.path.dirname(os.path.dirname(origin)))
    return folders


def _top_level_names(wheel_path: str) -> set[str]:
    with zipfile.ZipFile(wheel_path) as archive:
        return {name.split("/")[0] for name in archive.namelist()}


def test_the_wheel_holds_only_namespaced_packages(wheel):
    names = _top_level_names(wheel)
    packages = {name for name in names if not name.endswith(".dist-info")}
    assert packages == NAMESPACED
    with zipfile.ZipFile(wheel) as archive:
        listed = set(archive.namelist())
    for folder in ("pipelines", "models", "serving", "command_line"):  # every module is packaged
        for path, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith(".py") or name.endswith(".config"):
                    relative = os.path.relpath(os.path.join(path, name), ROOT)
                    assert f"dftopk_cascade/{relative}" in listed, relative


def test_the_library_needs_only_ranged_dependencies(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.parser.Parser().parsestr(archive.read(metadata).decode())
    requirements = message.get_all("Requires-Dist")
    core = [r for r in requirements if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("<")[0].strip() for r in core) == ["numpy", "tensorflow"]
    assert not [r for r in requirements if "==" in r.split(";")[0]], "exact pins belong in the lock"
    cascade = [r for r in requirements if 'extra == "cascade"' in r]
    assert any(r.startswith("tensorflow-recommenders") for r in cascade)


def test_no_generic_name_lands_in_site_packages(clean_env):
    site = subprocess.run(
        [
            os.path.join(clean_env, "bin", "python"),
            "-c",
            "import site; print(site.getsitepackages()[0])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    installed = set(os.listdir(site))
    assert NAMESPACED <= installed
    assert not installed & GENERIC


def test_the_installed_library_imports_and_the_repository_does_not_leak(clean_env, tmp_path):
    script = (
        "import dftopk_tf, tensorflow as tf\n"
        "p = dftopk_tf.dftopk(tf.constant([[3.0, 1.0, 2.0]]), k=1, tau=1.0)\n"
        "print(dftopk_tf.__file__)\n"
        "print(round(float(p[0, 0]), 4))\n"
        "import importlib.util\n"
        "print([importlib.util.find_spec(n) is None for n in ('models', 'pipelines', 'serving')])\n"
    )
    result = subprocess.run(
        [os.path.join(clean_env, "bin", "python"), "-c", script],
        cwd=str(tmp_path),
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""},
        check=True,
        capture_output=True,
        text=True,
    )
    location, value, missing = result.stdout.split("\n")[:3]
    assert location.startswith(clean_env)
    assert abs(float(value) - 1 / (1 + 2.718281828459045**-0.5)) < 1e-3  # sigmoid((3 - 2.5) / 1)
    assert missing == "[True, True, True]"


def test_an_installed_command_runs(clean_env, tmp_path):
    result = subprocess.run(
        [os.path.join(clean_env, "bin", "dftopk-convert"), "--help"],
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": ""},
        check=True,
        capture_output=True,
        text=True,
    )
    assert "--recflow" in result.stdout and "--data" in result.stdout
    command = os.path.join(clean_env, "bin", "dftopk-convert")
    missing = subprocess.run(
        [command, "--recflow", str(tmp_path / "none"), "--data", str(tmp_path / "out")],
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("dftopk-convert: error:")
    assert len(missing.stderr.strip().splitlines()) == 1
