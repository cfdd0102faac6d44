"""Runs a module's docstring examples as a test: every public symbol's example must work.

Example (in a test module)::

    @pytest.mark.parametrize("module_name", package_modules(dftopk_tf))
    def test_docstring_examples_run(module_name):
        assert_examples_pass(module_name)
"""

import doctest
import importlib
import pkgutil
from types import ModuleType


def package_modules(package: ModuleType) -> list[str]:
    """Every module of ``package`` (sub-packages included), sorted, the package itself first."""
    prefix = package.__name__ + "."
    return [
        package.__name__,
        *sorted(info.name for info in pkgutil.walk_packages(package.__path__, prefix=prefix)),
    ]


def assert_examples_pass(module_name: str, extra_globals: dict | None = None) -> None:
    """Runs ``module_name``'s docstring examples with its own names (plus ``extra_globals``)."""
    module = importlib.import_module(module_name)
    result = doctest.testmod(
        module,
        extraglobs=extra_globals or {},
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
