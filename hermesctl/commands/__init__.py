"""One module per noun; each defines a typer sub-app or command."""
