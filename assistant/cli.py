"""The `assistant` command: builds the app and registers every command, here and only here.

    ingest | search | stats | ask | chat | mcp | ui | verify  assistant/commands.py
    eval                                                      evals/command.py
    feedback                                                  assistant/feedback.py
"""

from __future__ import annotations

from typing import Any

import typer
import typer.core


class _Commands(typer.core.TyperGroup):
    """`assistant --help` lists each command's first sentence whole (wrapped, not cut)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def build_app() -> typer.Typer:
    """The `assistant` app with every command: the one place commands are registered."""
    from assistant import commands
    from assistant.feedback import cli as feedback_cli
    from evals.command import eval_command

    app = typer.Typer(
        help="Chat with a corpus of paper abstracts; every claim cites a numbered paper.",
        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
        rich_markup_mode=None,  # help texts contain [n] citations, not markup
        cls=_Commands,
    )
    for command in (commands.ingest, commands.search, commands.stats, commands.ask,
                    commands.chat, commands.mcp, commands.ui, commands.verify):
        app.command()(command)
    app.command("eval")(eval_command)
    app.add_typer(feedback_cli, name="feedback")  # assistant feedback export
    return app


app = build_app()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
