"""The command-line interface: thin typer wrappers over library functions."""
