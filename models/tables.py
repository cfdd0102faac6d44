"""Markdown tables of plain values: the project's one table helper.

The evaluation, the benchmarks and the experiments' reports print their tables with it. A table
is a list of column names and rows of plain values (``Cell``); numbers are right-aligned.

Example:
    >>> print(markdown_table(["n", "ms"], [[5, 0.25], [50, 1.5]]))
    | n | ms |
    |---:|---:|
    | 5 | 0.25 |
    | 50 | 1.5 |
"""

import math
from collections.abc import Sequence

Cell = str | int | float | None


def format_cell(value: Cell) -> str:
    """A table cell as text: floats with 4 significant digits, None as an empty cell.

    Example:
        >>> [format_cell(v) for v in (0.123456, 12345.6, 3, None, "dftopk")]
        ['0.1235', '1.235e+04', '3', '', 'dftopk']
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A markdown table; numeric columns are right-aligned.

    Example:
        >>> print(markdown_table(["method"], [["dftopk"]]))
        | method |
        |---|
        | dftopk |
    """
    check_row_widths(columns, rows)
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(columns))
    ]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---:" if is_numeric else "---" for is_numeric in numeric) + "|",
    ]
    lines += ["| " + " | ".join(format_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def check_row_widths(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    """Raises ``ValueError`` naming the first row whose cell count differs from the columns'.

    Example:
        >>> check_row_widths(["a", "b"], [[1, 2]])
    """
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"row {list(row)} has {len(row)} cells for {len(columns)} columns")
