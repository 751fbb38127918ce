"""Entry point of the ``multiflow-gm`` console script.

Every module in :mod:`multiflow_gm.cli.commands` that defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` becomes a subcommand, so a new
command is one new file. Command modules import their heavy dependencies inside
``run`` to keep ``--help`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from multiflow_gm import __version__
from multiflow_gm.cli import commands as commands_pkg
from multiflow_gm.errors import UserError
from multiflow_gm.runtime import tune_allocator


def _discover_commands():
    found = []
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        if all(hasattr(module, attr) for attr in ("NAME", "HELP", "add_arguments", "run")):
            found.append(module)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multiflow-gm",
        description="Generator Matching: protein co-design and image benchmarks on one core.",
    )
    parser.add_argument("--version", action="version", version=f"multiflow-gm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _discover_commands():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    tune_allocator()
    try:
        return int(args._run(args) or 0)
    except UserError as err:
        print(f"multiflow-gm {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
