"""Commands that build on answering: registered on the same Typer app (added below)."""
