"""The `workshop` command: grade your labs, and measure the workshop's performance figures."""

from __future__ import annotations

import argparse
import json
import sys

from workshop import manifest, paths


def check(args: argparse.Namespace) -> int:
    # Imported here: pytest and the graders' imports are only paid by the commands that grade.
    from workshop.grading import report, runner

    labs = [manifest.find(args.lab)] if args.lab else list(manifest.labs())
    results = runner.grade(labs, args.target)
    if args.json:
        print(json.dumps(report.as_json(results, args.target), indent=2))
    else:
        print(report.render(results, args.target, verbose=args.verbose))
    return 0 if all(result.done for result in results) else 1


def bench(args: argparse.Namespace) -> int:
    from workshop import bench as benchmarks

    return benchmarks.main(runs=args.runs, suite=args.suite, write=args.write)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workshop", description="Lambda Patterns Workshop")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    grade = commands.add_parser("check", help="grade your labs and show your progress (the default)")
    grade.add_argument("lab", nargs="?", help="only this lab: its number (1), id or id prefix (lab01)")
    grade.add_argument("--target", choices=sorted(paths.TARGETS), default="labs", help="grade labs/ (yours) or solutions/")
    grade.add_argument("--json", action="store_true", help="print machine-readable results (see docs/grading.md)")
    grade.add_argument("-v", "--verbose", action="store_true", help="show the message of every failing task")
    grade.set_defaults(func=check)

    measure = commands.add_parser("bench", help="print the performance figures (docs/performance figures)")
    measure.add_argument("--runs", type=int, default=5, help="fresh-process runs per figure (default 5)")
    measure.add_argument("--no-suite", dest="suite", action="store_false", help="skip timing the whole test suite")
    measure.add_argument("--write", action="store_true", help="also write the figures to docs/snippets/bench.md")
    measure.set_defaults(func=bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["check", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except (LookupError, manifest.ManifestError) as error:
        print(f"workshop: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
