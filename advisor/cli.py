"""`advisor` command line: a thin shell over the stage functions, one module per command group
(advisor/commands/). Heavy libraries are imported inside commands, so `advisor --help` is fast.

A failing command prints one line on stderr (what, where, what to do) and exits 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys

from advisor import __version__
from advisor.commands import batch as batch_cmd
from advisor.commands import dashboard as dashboard_cmd
from advisor.commands import drill as drill_cmd
from advisor.commands import eval as eval_cmd
from advisor.commands import export as export_cmd
from advisor.commands import index as index_cmd
from advisor.commands import ls as ls_cmd
from advisor.commands import plan as plan_cmd
from advisor.commands import qa as qa_cmd
from advisor.commands import recommend as recommend_cmd
from advisor.commands import run as run_cmd
from advisor.commands import search as search_cmd
from advisor.commands import serve as serve_cmd
from advisor.commands import tune as tune_cmd
from advisor.core.errors import AdvisorError, AlreadyReported
from advisor.core.logs import quiet_libraries

COMMANDS = [
    run_cmd,
    plan_cmd,
    qa_cmd,
    index_cmd,
    search_cmd,
    tune_cmd,
    export_cmd,
    eval_cmd,
    recommend_cmd,
    drill_cmd,
    batch_cmd,
    ls_cmd,
    dashboard_cmd,
    serve_cmd,
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="advisor",
        description="Decide between RAG, fine-tuning or both on your own corpus: build a FAISS index and a QLoRA "
        "adapter on the same documents, evaluate base / rag / tuned / tuned_rag on the same questions (accuracy, "
        "hallucination, forgetting, cost) and get a recommendation with its evidence and uncertainty.",
        epilog="Run 'advisor COMMAND --help' for a command's options. With no arguments, 'advisor run' runs the "
        "quickstart preset on the bundled sample domain.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="show library warnings and debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for mod in COMMANDS:
        mod.add_parser(sub)
    return p


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, except that key=value overrides may also follow options given after the positional arguments
    (`advisor index docs/ --config quickstart chunking.size=128 --out DIR`): argparse stops filling a positional
    list at the first option, and its subparsers cannot parse intermixed; anything else left over is an error."""
    args, extra = parser.parse_known_args(argv)
    if (
        extra
        and isinstance(getattr(args, "overrides", None), list)
        and all("=" in e and not e.startswith("-") for e in extra)
    ):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_command_line(parser, argv)
    if not args.command:
        parser.print_help()
        return 2
    if not args.verbose:
        quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except AlreadyReported as e:
        return e.exit_code
    except AdvisorError as e:
        print(f"advisor: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the disk or the file system said no (full disk, permissions): one line, not a traceback
        where = f" ({e.filename})" if e.filename else ""
        print(
            f"advisor: error: {e.strerror or e}{where}; free space or fix the permissions, then rerun the same "
            "command (finished stages are kept)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("advisor: interrupted; finished stages are kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
