"""The experiments report of ``python -m experiments.reproduce``: its runs, sections and files.

- ``training_runs``: trains and evaluates the cascades every study shares; ``experiment_sizes``:
  the full, quick and tiny sizes.
- One module per section: ``main_table``, ``tau_sensitivity``, ``negative_sampling``,
  ``streaming``, ``operator_runtime``, ``gradient_conflict``.
- ``report_document``: the sections written as ``report.md``; ``report_files``: its tables (CSV
  and markdown) and figures, each written atomically.

Example:
    >>> from experiments.report.experiment_sizes import SIZES
    >>> sorted(SIZES)
    ['full', 'quick', 'tiny']
"""
