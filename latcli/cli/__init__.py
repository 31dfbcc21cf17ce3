"""One thin Typer module per command. Heavy modules are imported inside the commands."""
