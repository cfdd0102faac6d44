"""The experiments report: sections of text, a table and a figure, written as ``report.md``.

Each section's table is also saved as ``<table_name>.csv`` next to the report; its figure (a PNG
already written into the report folder) is linked with a relative path, so the folder can be
moved or browsed as is.

Example:
    >>> section = ReportSection("Runtime", "Milliseconds by n.", "runtime", ["n", "ms"], [[5, 0.1]])
    >>> path = write_report("/tmp/report_example", "Experiments", ["Machine: test"], [section])
    >>> open(path).read().splitlines()[0]
    '# Experiments'
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from dftopk_cascade.models.tables import markdown_table
from dftopk_cascade.pipelines.atomic_files import atomic_path

from experiments.report.report_files import Cell, write_csv

REPORT_FILE = "report.md"


@dataclass(frozen=True)
class ReportSection:
    """One section of the report.

    Attributes:
        title: the section heading.
        text: what was measured and how (markdown), shown above the table.
        table_name: file stem of the table's CSV (unique within the report).
        columns: the table's column names.
        rows: the table's rows.
        figures: PNG file names inside the report folder, linked below the table.

    Example:
        >>> ReportSection("Conflict", "Shares.", "conflict", ["method"], [["dftopk"]]).figures
        ()
    """

    title: str
    text: str
    table_name: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    figures: Sequence[str] = field(default=())

    def markdown(self) -> str:
        """The section as markdown: heading, text, table, CSV link and figure links.

        Example:
            >>> print(ReportSection("T", "Text.", "t", ["a"], [[1]]).markdown())
            ## T
            <BLANKLINE>
            Text.
            <BLANKLINE>
            | a |
            |---:|
            | 1 |
            <BLANKLINE>
            Table as CSV: [t.csv](t.csv)
        """
        parts = [f"## {self.title}", self.text, markdown_table(self.columns, self.rows)]
        parts.append(f"Table as CSV: [{self.table_name}.csv]({self.table_name}.csv)")
        parts += [f"![{self.title}]({figure})" for figure in self.figures]
        return "\n\n".join(parts)


def write_report(
    report_dir: str,
    title: str,
    header_lines: Sequence[str],
    sections: Sequence[ReportSection],
    closing: str = "",
) -> str:
    """Writes every section's CSV and ``report.md`` into ``report_dir``; returns the report path.

    Raises ``ValueError`` when two sections share a table name or a linked figure is missing.

    Example:
        >>> write_report("/tmp/report_example", "Empty", [], []).endswith("report.md")
        True
    """
    names = [section.table_name for section in sections]
    if len(set(names)) != len(names):
        raise ValueError(f"table names must be unique, got {names}")
    os.makedirs(report_dir, exist_ok=True)
    for section in sections:
        for figure in section.figures:
            if not os.path.isfile(os.path.join(report_dir, figure)):
                raise ValueError(f"section {section.title!r} links {figure}, not in {report_dir}")
        write_csv(
            os.path.join(report_dir, f"{section.table_name}.csv"), section.columns, section.rows
        )
    body = [f"# {title}", "\n".join(f"- {line}" for line in header_lines)]
    body += [section.markdown() for section in sections]
    if closing:
        body.append(closing)
    path = os.path.join(report_dir, REPORT_FILE)
    with atomic_path(path) as temporary, open(temporary, "w") as file:
        file.write("\n\n".join(part for part in body if part) + "\n")
    return path
