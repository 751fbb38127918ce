"""Command-line interface: ``multiflow-gm <command> ...``."""
