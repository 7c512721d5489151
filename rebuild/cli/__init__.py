"""Command line: parse arguments and delegate. No logic lives here.

Each verb is one module of this package exposing
    register(subparsers: argparse._SubParsersAction) -> None
which adds its parser and sets `func=<callable(args) -> int>` as default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rebuild.errors import RebuildError

VERBS = ("plan", "inventory", "site", "status", "report", "lab", "harden")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rebuild",
        description="Rebuild a ransomware-hit Windows fleet: reimage, harden, redeploy, verify.",
    )
    subparsers = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        importlib.import_module(f"rebuild.cli.{verb}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RebuildError as exc:
        print(f"rebuild: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rebuild: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
