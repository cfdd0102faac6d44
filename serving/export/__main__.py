"""``python -m dftopk_cascade.serving.export``: the export command
(``dftopk_cascade.serving.export.saved_models.main``)."""

from dftopk_cascade.command_line.entry import run_command
from dftopk_cascade.serving.export.saved_models import main

if __name__ == "__main__":
    run_command(main, "python -m dftopk_cascade.serving.export")
