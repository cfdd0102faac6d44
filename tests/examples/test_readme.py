"""The README's ``pycon`` snippets run as doctests, each under the Keras it is written for.

A snippet is marked by an HTML comment on the line before its fence: ``<!-- doctest: tf-keras -->``
(runs in the tf-keras suite) or ``<!-- doctest: keras-3 -->`` (runs in the Keras 3 pass of
scripts/test.sh).
"""

import doctest
import os
import re

import pytest

from dftopk_tf.keras_compat import IS_KERAS_3

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
SNIPPET = re.compile(
    r"<!-- doctest: (?P<keras>tf-keras|keras-3) -->\n```pycon\n(?P<code>.*?)```", re.S
)


def readme_snippets() -> list[tuple[str, str]]:
    """(keras, code) of every marked snippet, in README order."""
    with open(README, encoding="utf-8") as readme:
        return [(match["keras"], match["code"]) for match in SNIPPET.finditer(readme.read())]


def test_the_readme_has_a_snippet_for_each_keras() -> None:
    assert sorted({keras for keras, _ in readme_snippets()}) == ["keras-3", "tf-keras"]


@pytest.mark.parametrize(("keras", "code"), readme_snippets())
def test_readme_snippet_runs(keras: str, code: str) -> None:
    if (keras == "keras-3") != IS_KERAS_3:
        pytest.skip(f"a {keras} snippet; this run is on {'Keras 3' if IS_KERAS_3 else 'tf-keras'}")
    test = doctest.DocTestParser().get_doctest(code, {}, f"README ({keras})", README, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0 and results.failed == 0
