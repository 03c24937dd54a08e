"""The mutation gate: how many small wrong changes to the reference solutions the graders catch.

Each mutant is one change to one place of a solution's Python code, of the kind a learner's slip makes:
a comparison off by one (`<` for `<=`), `and` for `or`, a condition negated, a number off by one, a
keyword argument or a decorator left out, a call statement left out, a value returned as None. Each is
graded like a learner's lab (variants.py); a mutant is killed when some check fails. A mutant that
survives either shows a gap in the graders, or changes nothing a user could see: those are listed, with
why, in tests/answers/equivalent_mutants.toml, which is reviewed like code.

    make mutants                      every lab (about a second a mutant on a 2-core laptop)
    python -m workshop.mutants 3      lab 3 only; --list prints the mutants without grading them
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workshop import manifest, paths, variants

EQUIVALENT = variants.ANSWERS / "equivalent_mutants.toml"
TARGET_PERCENT = 95

COMPARISONS = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip
ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv}


@dataclass(frozen=True)
class Mutant:
    lab: manifest.Lab
    file: str  # inside the lab
    line: int
    name: str  # stable across unrelated edits: file, function, what changed (and #n when repeated)
    text: str  # the mutated file


def _replacements(node: ast.AST, parent: ast.AST | None) -> Iterator[str]:
    """The mutated source text of `node`, one per mutation that applies to it."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARISONS:
        yield ast.unparse(ast.Compare(node.left, [COMPARISONS[type(node.ops[0])]()], node.comparators))
    elif isinstance(node, ast.BoolOp):
        yield ast.unparse(ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield ast.unparse(node.operand)
    elif isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        yield ast.unparse(ast.BinOp(node.left, ARITHMETIC[type(node.op)](), node.right))
    elif isinstance(node, ast.Constant) and not isinstance(parent, ast.JoinedStr | ast.FormattedValue):
        value = node.value
        if isinstance(value, bool):
            yield repr(not value)
        elif isinstance(value, int | float):
            yield repr(value + 1)
        elif isinstance(value, str) and value:
            yield repr("XX" + value + "XX")
    elif isinstance(node, ast.Return) and node.value is not None and not (
        isinstance(node.value, ast.Constant) and node.value.value is None
    ):
        yield "return None"
    elif isinstance(node, ast.Call):
        for index in range(len(node.keywords)):
            kept = node.keywords[:index] + node.keywords[index + 1 :]
            yield ast.unparse(ast.Call(node.func, node.args, kept))
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "pass"
    elif isinstance(node, ast.Break):
        yield "continue"
    elif isinstance(node, ast.Continue):
        yield "break"


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and isinstance(parent, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and parent.body[0] is node
    )


def _walk(node: ast.AST, parent: ast.AST | None, scope: str) -> Iterator[tuple[ast.AST, ast.AST | None, str]]:
    """Every node a mutation may change, with its parent and the function or class it is in. Skipped:
    docstrings, type annotations (they change no behaviour here) and `if __name__ == "__main__":`."""
    if _is_docstring(node, parent) or (isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)):
        return
    yield node, parent, scope
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        scope = f"{scope}.{node.name}" if scope else node.name
    for name, value in ast.iter_fields(node):
        if name in {"annotation", "returns", "type_comment"}:
            continue
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                yield from _walk(child, node, scope)


def _offset(lines: list[str], line: int, column: int) -> int:
    """A (1-based line, UTF-8 byte column) position as an index into the text."""
    return sum(len(text) for text in lines[: line - 1]) + len(lines[line - 1].encode()[:column].decode())


def mutants_of(lab: manifest.Lab, path: Path) -> list[Mutant]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    relative = path.relative_to(lab.folder("solutions")).as_posix()
    found: list[Mutant] = []
    seen: dict[str, int] = {}
    for node, parent, scope in _walk(ast.parse(source), None, ""):
        if not hasattr(node, "end_lineno"):
            continue
        decorated = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        changes = []
        if decorated:  # a decorator left out
            for decorator in node.decorator_list:
                start = _offset(lines, decorator.lineno, decorator.col_offset) - 1  # the "@"
                end = _offset(lines, decorator.end_lineno, decorator.end_col_offset)
                changes.append((start, end, "", f"@{ast.unparse(decorator)}", "no decorator"))
        else:
            start = _offset(lines, node.lineno, node.col_offset)
            end = _offset(lines, node.end_lineno, node.end_col_offset)
            original = source[start:end]
            changes += [(start, end, new, original, new) for new in _replacements(node, parent)]
        for start, end, new, original, shown in changes:
            text = source[:start] + new + source[end:]
            try:
                ast.parse(text)
            except SyntaxError:
                continue
            described = f"{lab.id}/{relative} {scope or '<module>'}: {_short(original)} -> {_short(shown)}"
            seen[described] = seen.get(described, 0) + 1
            name = described if seen[described] == 1 else f"{described} #{seen[described]}"
            found.append(Mutant(lab, relative, node.lineno, name, text))
    return found


def _short(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def lab_mutants(lab: manifest.Lab) -> list[Mutant]:
    folder = lab.folder("solutions")
    files = sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)
    return [mutant for path in files for mutant in mutants_of(lab, path)]


def equivalent() -> dict[str, str]:
    """The reviewed list: mutant name -> why it changes nothing a user could see."""
    document = tomllib.loads(EQUIVALENT.read_text(encoding="utf-8")) if EQUIVALENT.is_file() else {}
    return {entry["mutant"]: entry["why"] for entry in document.get("equivalent", [])}


class GateError(RuntimeError):
    """The gate cannot judge: the reference fails, or a grader cannot run."""


def _first_failure(result) -> str:
    return next((test.name for task in result.tasks for test in task.tests if not test.passed), "")


def run(labs: list[manifest.Lab], show_killed: bool) -> int:
    from workshop import sandbox

    sandbox.enter()
    reviewed = equivalent()
    named = set()
    gaps = 0
    with variants.reference_copy() as copy:
        for lab in labs:
            # A mutant is killed by a check that fails, never by a grader that cannot run: the reference
            # itself must pass first, and a grader error stops the gate.
            baseline = variants.grade(variants.Variant(lab, "the reference"), copy)
            if not baseline.done:
                raise GateError(f"lab {lab.number}'s reference does not pass, so no mutant can be judged: "
                                f"{baseline.error or _first_failure(baseline)}")
            mutants = lab_mutants(lab)
            killed, survivors, listed = 0, [], 0
            began = time.perf_counter()
            for mutant in mutants:
                named.add(mutant.name)
                result = variants.grade(variants.Variant(lab, mutant.name, {mutant.file: mutant.text}), copy)
                if result.error:
                    raise GateError(f"the grader could not run on {mutant.name}: {result.error[:2000]}")
                if not result.done:
                    killed += 1
                    if show_killed:
                        print(f"  killed   {mutant.name}  ({_first_failure(result)})")
                elif mutant.name in reviewed:
                    listed += 1
                else:
                    survivors.append(mutant)
            relevant = len(mutants) - listed
            percent = 100 * killed / relevant if relevant else 100.0
            seconds = time.perf_counter() - began
            print(
                f"Lab {lab.number} {lab.id}: {killed}/{relevant} non-equivalent mutants killed ({percent:.1f}%), "
                f"{listed} listed as equivalent, {len(mutants)} in all, {seconds:.0f} s"
            )
            for mutant in survivors:
                print(f"  survived {mutant.name}  (line {mutant.line})")
            gaps += percent < TARGET_PERCENT
    stale = [name for name in reviewed if name not in named and any(name.startswith(lab.id) for lab in labs)]
    for name in stale:
        print(f"Listed as equivalent but no longer a mutant (remove it from {paths.relative(EQUIVALENT)}): {name}")
    return 1 if gaps or stale else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m workshop.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*", help="lab numbers or ids (default: every lab)")
    parser.add_argument("--list", action="store_true", help="print the mutants, grade nothing")
    parser.add_argument("--killed", action="store_true", help="also print each killed mutant and the check that failed")
    args = parser.parse_args(argv)
    labs = [manifest.find(name) for name in args.labs] or list(manifest.labs())
    if args.list:
        for lab in labs:
            for mutant in lab_mutants(lab):
                print(f"{mutant.name}  (line {mutant.line})")
        return 0
    try:
        return run(labs, args.killed)
    except GateError as error:
        print(f"workshop.mutants: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from workshop.process_exit import exit_now

    exit_now(main(sys.argv[1:]))  # without the teardown of all of moto that Python would do (process_exit.py)
