"""The ``derms`` command line (typer + rich)."""
