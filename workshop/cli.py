"""The `workshop` command: grade your labs, get hints, reset or compare your code, check your set-up.

    workshop                 your progress, and what to do next (the same as `workshop check`)
    workshop check [LAB]     grade one lab (default: the first one not done yet); --all grades them all
    workshop status          grade every lab and show the progress table only
    workshop hint LAB [TASK] the hints of a task, one tier at a time
    workshop watch [LAB]     grade again on every save
    workshop solution LAB    compare your code with the reference, once the lab passes
    workshop reset LAB       put the starter back (your version is kept; --undo brings it back)
    workshop invoke LAB FN   run one function the way Lambda would, offline (its stack in moto)
    workshop start-api LAB   serve the lab's API on http://127.0.0.1:3000
    workshop upload|send|publish|tick LAB ...   drive the lab's event sources: S3, SQS, SNS, schedules
    workshop doctor          check this machine
    workshop verify          instructors: every solution passes, every starter fails, every hint is there
    workshop bench           measure the performance figures the pages quote
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from typing import NoReturn

from workshop import manifest, paths, starters
from workshop.manifest import Lab


def _grade(labs: list[Lab], target: str):
    from workshop.grading import collector

    with collector.fewer_collections():
        # Imported here: pytest and the graders' imports are only paid by the commands that grade.
        from workshop.grading import runner

        return runner.grade(labs, target)


def _grade_until_unfinished(target: str):
    """Grade the labs in course order and stop at the first one not done: never auto-advance."""
    results = []
    for lab in manifest.labs():
        results += _grade([lab], target)
        if not results[-1].done:
            break
    return results


def check(args: argparse.Namespace) -> int:
    from workshop.grading import report

    if args.lab:
        results = _grade([manifest.find(args.lab)], args.target)
    elif args.all:
        results = _grade(list(manifest.labs()), args.target)
    else:
        results = _grade_until_unfinished(args.target)
    if args.json:
        print(json.dumps(report.as_json(results, args.target), indent=2))
    else:
        print(report.render(list(manifest.labs()), results, args.target, verbose=args.verbose))
    return 0 if all(result.done for result in results) else 1


def status(args: argparse.Namespace) -> int:
    from workshop.grading import report

    labs = list(manifest.labs())
    results = _grade(labs, args.target)
    if args.json:
        print(json.dumps(report.as_json(results, args.target), indent=2))
    else:
        lines = report.progress_table(labs, results, report.Style())
        current = report.current_lab(results)
        follow = f"Next: lab {current.lab.number}, `workshop check {current.lab.number}`." if current else "Every lab passes."
        print("\n".join([*lines, "", follow]))
    # As `check` exits: scripts and course platforms read the state of the course from the exit code too.
    return 0 if all(result.done for result in results) else 1


def hint(args: argparse.Namespace) -> int:
    lab = manifest.find(args.lab)
    check_hint = None
    if args.task is None:
        failing = _grade([lab], "labs")[0].next_task
        if failing is None:
            print(f"Every task of lab {lab.number} passes: no hint needed.")
            return 0
        task, check_hint = failing.task, failing.check_hint
        if check_hint:
            print(f"Lab {lab.number}, task {task.number}: {failing.first_failure.name} fails.\n\n{check_hint}\n")
    elif 1 <= args.task <= len(lab.tasks):
        task = lab.tasks[args.task - 1]
    else:
        raise LookupError(f"lab {lab.number} has tasks 1 to {len(lab.tasks)}, not {args.task}")
    tiers = len(task.hints)
    shown = task.hints[: args.tier] if args.tier else task.hints[: 0 if check_hint else 1]
    if not shown:
        print(f"The task's hints, tier by tier: workshop hint {lab.number} {task.number} --tier 1")
        return 0
    print(f"Lab {lab.number}, task {task.number}: {task.title}\n")
    for number, text in enumerate(shown, start=1):
        print(f"Hint {number} of {tiers}: {text}\n")
    if len(shown) < tiers:
        print(f"More: workshop hint {lab.number} {task.number} --tier {len(shown) + 1}")
    return 0


def solution(args: argparse.Namespace) -> int:
    lab = manifest.find(args.lab)
    if not args.reveal:
        result = _grade([lab], "labs")[0]
        if not result.done:
            print(
                f"Lab {lab.number} is not finished yet ({result.passed_count}/{len(result.tasks)} tasks). "
                f"The hints help more than the answer: `workshop hint {lab.number}`. To see the reference "
                f"anyway: `workshop solution {lab.number} --reveal`."
            )
            return 1
    mine, reference = starters.files_in(lab.folder("labs")), starters.files_in(lab.folder("solutions"))
    for name in sorted(mine.keys() | reference.keys()):
        if name.endswith(".ipynb") or mine.get(name) == reference.get(name):
            continue
        before = mine.get(name, b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        after = reference.get(name, b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        sys.stdout.writelines(difflib.unified_diff(before, after, f"labs/{lab.id}/{name}", f"solutions/{lab.id}/{name}"))
    return 0


def _confirmed(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question}\nNot confirmed: run again with --yes to go ahead without a question.")
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def reset(args: argparse.Namespace) -> int:
    lab = manifest.find(args.lab)
    folder = starters.lab_folder(lab)  # a file in its place: refused, left alone
    if args.undo:
        source = starters.latest_backup(lab)
        if starters.same_tree(folder, source):
            print(f"labs/{lab.id} is already your version from {paths.relative(source)}/: nothing to undo.")
            return 0
        changed = starters.changed_files(lab) if folder.exists() else []
        question = f"Replace labs/{lab.id} with your version from {paths.relative(source)}/? Yours has"
        command = f"workshop reset --undo {lab.number} --yes"
    elif not folder.exists():
        starters.reset(lab)
        print(f"labs/{lab.id} did not exist, so there was nothing to back up. Lab {lab.number} is back to its starter.")
        return 0
    else:
        changed = starters.changed_files(lab)
        if not changed:
            print(f"labs/{lab.id} is already the untouched starter: nothing to reset.")
            return 0
        question = f"Replace labs/{lab.id} with the original starter? Yours has"
        command = f"workshop reset {lab.number} --yes"
    if changed and not args.yes:  # no changes from the starter: nothing of the learner's work to lose
        question += (
            f" {len(changed)} file(s) changed from the starter: {', '.join(changed[:5])}"
            f"{' ...' if len(changed) > 5 else ''}. It is kept first, as a backup."
        )
        if not sys.stdin.isatty():
            print(f"workshop: {question}", file=sys.stderr)
            print(f"Nothing changed: no terminal to answer in. To go ahead: `{command}`.", file=sys.stderr)
            return 2
        try:
            confirmed = _confirmed(question, False)
        except EOFError:
            confirmed = False
        if not confirmed:
            print("Nothing changed.")
            return 1
    if args.undo:
        kept = starters.undo(lab, source)
        print(f"Brought back your version of lab {lab.number} from {paths.relative(source)}/.")
        if kept:
            print(f"The version it replaced is kept in {paths.relative(kept)}/.")
        return 0
    saved = starters.reset(lab)
    print(f"Lab {lab.number} is back to its starter. Your version is in {paths.relative(saved)}/;")
    print(f"`workshop reset --undo {lab.number}` brings it back.")
    return 0


def invoke(args: argparse.Namespace) -> int:
    from workshop.local import commands

    return commands.invoke(args.lab, args.function, args.event, args.target, args.repeat, args.warehouse)


def start_api(args: argparse.Namespace) -> int:
    from workshop.local import api

    return api.start_api(args.lab, args.target, args.port)


def upload(args: argparse.Namespace) -> int:
    from workshop.local import commands

    return commands.upload(args.lab, args.file, args.key, args.bucket, args.target)


def send(args: argparse.Namespace) -> int:
    from workshop.local import commands

    return commands.send(args.lab, args.event, args.body, args.function, args.target)


def publish(args: argparse.Namespace) -> int:
    from workshop.local import commands

    return commands.publish(args.lab, args.event, args.message, args.attribute, args.subject, args.target)


def tick(args: argparse.Namespace) -> int:
    from workshop.local import commands

    return commands.tick(args.lab, args.until, args.since, args.target)


def doctor(args: argparse.Namespace) -> int:
    from workshop import doctor as checks

    findings = checks.run()
    print(checks.render(findings))
    return 0 if all(f.ok or not f.required for f in findings) else 1


def verify(args: argparse.Namespace) -> int:
    from workshop import verification

    return verification.main(refresh=args.refresh_starters)


def watch(args: argparse.Namespace) -> int:
    from workshop.watch import watch as watch_lab

    lab = manifest.find(args.lab) if args.lab else _first_unfinished()
    return watch_lab(lab)


def _first_unfinished() -> Lab:
    results = _grade_until_unfinished("labs")
    return results[-1].lab


def bench(args: argparse.Namespace) -> int:
    from workshop import bench as benchmarks

    return benchmarks.main(runs=args.runs, suite=args.suite, write=args.write, quick=args.quick)


def port(text: str) -> int:
    """A TCP port for argparse: 0 (any free one) to 65535."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port: choose 1024 to 65535 (or 0 for any free port)")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workshop", description="Lambda Patterns Workshop")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    lab_help = "a lab: its number (1), id or id prefix (lab01)"
    target = {"choices": sorted(paths.TARGETS), "default": "labs", "help": "run labs/ (yours) or solutions/"}

    grade = commands.add_parser("check", help="grade a lab and show what to do next (the default)")
    grade.add_argument("lab", nargs="?", help=f"{lab_help}; default: the first lab not done yet")
    grade.add_argument("--all", action="store_true", help="grade every lab")
    grade.add_argument("--target", choices=sorted(paths.TARGETS), default="labs", help="grade labs/ (yours) or solutions/")
    grade.add_argument("--json", action="store_true", help="print machine-readable results (see docs/grading.md)")
    grade.add_argument("-v", "--verbose", action="store_true", help="show the message of every failing task")
    grade.set_defaults(func=check)

    table = commands.add_parser("status", help="grade every lab and show the progress table")
    table.add_argument("--target", choices=sorted(paths.TARGETS), default="labs", help="labs/ (yours) or solutions/")
    table.add_argument("--json", action="store_true", help="print machine-readable results")
    table.set_defaults(func=status)

    hints = commands.add_parser("hint", help="the hints of a task, one tier at a time")
    hints.add_argument("lab", help=lab_help)
    hints.add_argument("task", nargs="?", type=int, help="the task's number; default: your first failing task")
    hints.add_argument("--tier", type=int, choices=range(1, 4), help="show the hints up to this tier (1 to 3)")
    hints.set_defaults(func=hint)

    follow = commands.add_parser("watch", help="grade a lab again every time you save one of its files")
    follow.add_argument("lab", nargs="?", help=f"{lab_help}; default: the first lab not done yet")
    follow.set_defaults(func=watch)

    answer = commands.add_parser("solution", help="show how your code differs from the reference")
    answer.add_argument("lab", help=lab_help)
    answer.add_argument("--reveal", action="store_true", help="show it even though the lab does not pass yet")
    answer.set_defaults(func=solution)

    restore = commands.add_parser("reset", help="put a lab's starter back, keeping your version")
    restore.add_argument("lab", help=lab_help)
    restore.add_argument("--undo", action="store_true", help="bring back your version from before the last reset")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.set_defaults(func=reset)

    run = commands.add_parser("invoke", help="run one function of a lab the way Lambda would, offline")
    run.add_argument("lab", help=lab_help)
    run.add_argument("function", help="the function's folder (items_api) or logical id (ItemsApiFunction)")
    run.add_argument("--event", help="an event of the lab's events/ folder by name, or a JSON file; default: the first that fits")
    run.add_argument("--repeat", type=int, default=1, help="invoke N times in one environment: a cold start, then warm ones")
    run.add_argument(
        "--warehouse", choices=("confirm", "refuse", "silence"), default="confirm",
        help="lab 7: what the warehouse answers the workflow's callback (silence: its timeout passes)",
    )
    run.add_argument("--target", **target)
    run.set_defaults(func=invoke)

    serve = commands.add_parser("start-api", help="serve a lab's API routes on 127.0.0.1, offline")
    serve.add_argument("lab", help=lab_help)
    serve.add_argument("--port", type=port, default=3000, help="the port to listen on (default 3000; 0: any free port)")
    serve.add_argument("--target", **target)
    serve.set_defaults(func=start_api)

    put = commands.add_parser("upload", help="put a file in a lab's bucket: S3 invokes the functions its filters match")
    put.add_argument("lab", help=lab_help)
    put.add_argument("file", help="the file to upload")
    put.add_argument("--key", help="the object's key; default: the function's filter prefix and the file's name")
    put.add_argument("--bucket", help="the bucket's logical id; default: the one that invokes a function")
    put.add_argument("--target", **target)
    put.set_defaults(func=upload)

    enqueue = commands.add_parser("send", help="send messages to a lab's queue: Lambda polls it in batches")
    enqueue.add_argument("lab", help=lab_help)
    enqueue.add_argument("--event", help="send the bodies of an SQS event of events/ (by name or file); default: the first")
    enqueue.add_argument("--body", action="append", default=[], help="a message body to send (repeat for several)")
    enqueue.add_argument("--function", help="the function whose queue to use, when several poll one")
    enqueue.add_argument("--target", **target)
    enqueue.set_defaults(func=send)

    announce = commands.add_parser("publish", help="publish to a lab's topic: SNS delivers to each matching subscriber")
    announce.add_argument("lab", help=lab_help)
    announce.add_argument("--event", help="publish the messages of an SNS event of events/ again; default: the first")
    announce.add_argument("--message", help="a message to publish instead")
    announce.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE", help="a string message attribute")
    announce.add_argument("--subject", help="the message's subject")
    announce.add_argument("--target", **target)
    announce.set_defaults(func=publish)

    clock = commands.add_parser("tick", help="move a lab's clock: its schedules fire with EventBridge's events")
    clock.add_argument("lab", help=lab_help)
    clock.add_argument("until", help="the simulated time to move to, e.g. 2026-11-27T14:00:00Z")
    clock.add_argument("--since", help="where the clock starts (default: a minute before); every run in between fires")
    clock.add_argument("--target", **target)
    clock.set_defaults(func=tick)

    health = commands.add_parser("doctor", help="check Python, the virtual environment, packages and the offline guard")
    health.set_defaults(func=doctor)

    instructor = commands.add_parser("verify", help="instructors: solutions pass, starters fail, hints are reachable")
    instructor.add_argument("--refresh-starters", action="store_true", help="maintainers: re-pack labs/ as the shipped starters")
    instructor.set_defaults(func=verify)

    measure = commands.add_parser("bench", help="print the performance figures the pages quote")
    measure.add_argument("--runs", type=int, help="fresh-process runs per figure (default 5; 1 with --quick)")
    measure.add_argument("--quick", action="store_true",
                         help="every figure once, on the least work: checks that the bench runs, not figures to quote")
    measure.add_argument("--no-suite", dest="suite", action="store_false", help="skip timing the whole test suite")
    measure.add_argument("--write", action="store_true", help="also write the figures to docs/snippets/bench.md")
    measure.set_defaults(func=bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments or ["check"])
    if args.command is None:  # options without a command, e.g. `workshop --json`
        args = parser.parse_args(["check", *arguments])
    try:
        return args.func(args)
    except (LookupError, manifest.ManifestError, starters.StarterError) as error:
        print(f"workshop: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`workshop check | head`): not an error of ours, and nothing left to say.
        # Point stdout at /dev/null so that Python's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def run() -> NoReturn:
    """The `workshop` command (its console script, and `python -m workshop`): main(), then an exit
    without Python's teardown (process_exit.py: 0.8 s of a `workshop invoke`)."""
    from workshop.process_exit import exit_now

    try:
        code = main()
    except SystemExit as ended:  # argparse's --help and usage errors, as Python itself would end them
        code = ended.code if isinstance(ended.code, int) else 0 if ended.code is None else 1
        if not isinstance(ended.code, (int, type(None))):
            print(ended.code, file=sys.stderr)
    exit_now(code)
