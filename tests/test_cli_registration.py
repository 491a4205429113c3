"""Commands are registered in one place (assistant/cli.py), never as a side effect of an import."""

from __future__ import annotations

import subprocess
import sys

EXPECTED = {"ingest", "search", "stats", "ask", "chat", "mcp", "ui", "verify", "eval",
            "feedback"}


def test_the_app_has_every_command():
    import typer

    from assistant.cli import build_app

    group = typer.main.get_command(build_app())
    assert set(group.commands) == EXPECTED


def test_command_modules_register_nothing_and_never_import_the_cli():
    """Importing a command module leaves assistant.cli unimported (no cycle, no side effect)."""
    probe = ("import sys, assistant.commands, evals.command, assistant.feedback; "
             "print('assistant.cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"
