"""``python -m serving.export``: the export command (``serving.export.saved_models.main``)."""

from command_line.entry import run_command
from serving.export.saved_models import main

if __name__ == "__main__":
    run_command(main, "python -m serving.export")
