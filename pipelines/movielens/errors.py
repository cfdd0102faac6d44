"""The one error type of the MovieLens reader and converter.

``MovieLensError`` is a ``ValueError``, so ``dftopk_cascade.command_line.entry.run_command`` reports
it as one line (exit code 2). Its message names the file and says what to do.

Example:
    >>> isinstance(MovieLensError("recbole-1.2.1-py3-none-any.whl: sha256 mismatch"), ValueError)
    True
"""


class MovieLensError(ValueError):
    """Bad or missing MovieLens input: the message names the file and what to do.

    Example:
        >>> str(MovieLensError("ml-100k.inter: no ratings"))
        'ml-100k.inter: no ratings'
    """
