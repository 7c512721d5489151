"""Command line: parse arguments and delegate. No logic lives here.

Each verb is one module of this package exposing
    register(subparsers: argparse._SubParsersAction) -> None
which adds its parser and sets `func=<callable(args) -> int>` as default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rebuild.errors import NO_ROOM_ERRNOS, RebuildError, StateError

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


def _os_error(exc: OSError) -> RebuildError:
    """An expected OS failure (missing, unreadable or misplaced file, full disk) as a message
    naming the file; the code that failed wrote atomically, so nothing is half-written."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    text = f"{where}: {exc.strerror or exc}" if where else f"{type(exc).__name__}: {exc}"
    if exc.errno in NO_ROOM_ERRNOS:
        return StateError(f"{text}: free space (or make it writable) and run the command again")
    return RebuildError(text)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # option types may refuse (OptionError)
        return int(args.func(args))
    except RebuildError as exc:
        print(f"rebuild: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # only the OS's own: every other exception is a bug and shows as one
        error = _os_error(exc)
        print(f"rebuild: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("rebuild: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
