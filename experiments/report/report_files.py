"""Tables, figures and the machine line of the experiments report, each written atomically.

A table is a list of column names and rows of plain values; it is saved as CSV (for other tools)
and rendered as a markdown table (``dftopk_cascade.models.tables.markdown_table``, for
``report.md``). Figures are drawn on a matplotlib ``Figure`` with the Agg canvas, so no display and
no global pyplot state is involved.

Example:
    >>> write_csv("/tmp/report_files_example.csv", ["n", "ms"], [[5, 0.25], [50, 1.5]])
    >>> open("/tmp/report_files_example.csv").read().splitlines()
    ['n,ms', '5,0.25', '50,1.5']
"""

import csv
from collections.abc import Sequence

from dftopk_cascade.models.tables import Cell, check_row_widths
from dftopk_cascade.pipelines.atomic_files import atomic_path
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def write_csv(path: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    """Writes the table as CSV to ``path`` (under a temporary name, then renamed).

    Example:
        >>> write_csv("/tmp/report_files_example.csv", ["n"], [[5]])
        >>> open("/tmp/report_files_example.csv").read().split()
        ['n', '5']
    """
    check_row_widths(columns, rows)
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows([["" if cell is None else cell for cell in row] for row in rows])


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A matplotlib ``Figure`` on the Agg canvas (no display needed).

    Example:
        >>> type(new_figure().canvas).__name__
        'FigureCanvasAgg'
    """
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str) -> None:
    """Saves ``figure`` as PNG to ``path`` (under a temporary name, then renamed).

    Example:
        >>> figure = new_figure()
        >>> _ = figure.add_subplot().plot([1, 2], [1, 4])
        >>> save_figure(figure, "/tmp/report_files_example.png")
    """
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
