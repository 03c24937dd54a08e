"""The course hangs together: manifest, lab and solution folders, graders, docs pages, nav and notebooks agree."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from workshop import manifest, paths, templates
from workshop.grading.plugin import task_number

LABS = manifest.labs()
IGNORED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".aws-sam"}
TODO = re.compile(r"TODO\(task (\d+)\)")
EVENT_NAME = re.compile(r"^[a-z0-9]+_[a-z0-9_]+\.json$")
BUNDLED = re.compile(r"^\s*(boto3|botocore|aws-lambda-powertools|pydantic)\b", re.M | re.I)


def files_under(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and not IGNORED & set(path.relative_to(folder).parts)
    }


def lab_ids(pattern: str) -> list[Path]:
    return sorted(paths.ROOT.glob(pattern))


@pytest.fixture(params=LABS, ids=lambda lab: lab.id)
def lab(request) -> manifest.Lab:
    return request.param


def test_every_lab_of_the_manifest_has_its_folders_grader_and_page(lab):
    for needed in (lab.folder("labs"), lab.folder("solutions")):
        assert needed.is_dir(), f"{lab.id}: {paths.relative(needed)} is missing"
    assert lab.grader.is_file(), f"{lab.id}: grader {paths.relative(lab.grader)} is missing"
    assert (paths.DOCS / lab.page).is_file(), f"{lab.id}: page docs/{lab.page} is missing"


def test_nothing_exists_that_the_manifest_does_not_list():
    known = {lab.id for lab in LABS}
    expected = {
        paths.LABS: known | {"labs.toml"},
        paths.SOLUTIONS: known,
        paths.TESTS: {f"test_{lab}.py" for lab in known} | {"conftest.py", "meta", "answers"},
        # The graders' right and wrong answers, one file per lab, and the mutation gate's reviewed list.
        paths.TESTS / "answers": {f"{lab}.toml" for lab in known} | {"README.md", "equivalent_mutants.toml"},
    }
    for folder, names in expected.items():
        extra = sorted(p.name for p in folder.iterdir() if p.name not in names and p.name not in IGNORED)
        assert not extra, f"{paths.relative(folder)}/ holds what the manifest does not list: {extra}"
    stray = [
        paths.relative(path)
        for path in [*lab_ids("labs/lab*/"), *lab_ids("solutions/lab*/"), *lab_ids("tests/test_lab*.py"), *lab_ids("docs/labs/*.md")]
        if path.name.removeprefix("test_").removesuffix(".py").removesuffix(".md") not in known
    ]
    assert not stray, f"not in labs/labs.toml: {stray}"


def test_starter_and_solution_mirror_each_other_path_for_path(lab):
    starter, solution = files_under(lab.folder("labs")), files_under(lab.folder("solutions"))
    assert starter == solution, (
        f"{lab.id}: only in labs/: {sorted(starter - solution)}; only in solutions/: {sorted(solution - starter)}"
    )


@pytest.mark.parametrize("target", ["labs", "solutions"])
def test_each_function_folder_is_a_codeuri_with_app_and_requirements(lab, target):
    folder = lab.folder(target)
    code_uris = {
        str(properties.get("CodeUri", "")).rstrip("/")
        for _, properties in templates.resources_of_type(templates.load(folder / "template.yaml"), "AWS::Serverless::Function")
    }
    # A CodeUri starting with ../ deploys another lab's function (lab 6 tunes labs 1, 3 and 4): it stays in the
    # same tree, and in the reference it is exactly a function folder that its own lab lists.
    borrowed = {uri for uri in code_uris if uri.startswith("../")}
    assert code_uris - borrowed == set(lab.functions), (
        f"{target}/{lab.id}: template CodeUris {code_uris - borrowed} != manifest functions {lab.functions}"
    )
    tree = paths.target_root(target).resolve()
    for uri in borrowed:
        resolved = (folder / uri).resolve()
        assert resolved.is_relative_to(tree) and resolved.is_dir(), f"{target}/{lab.id}: CodeUri {uri} leaves {target}/"
        if target == "solutions":
            owners = [other for other in LABS if resolved == other.folder(target).resolve() / resolved.name]
            assert owners and resolved.name in owners[0].functions, (
                f"solutions/{lab.id}: CodeUri {uri} is not a function folder of another lab"
            )
    for function in lab.functions:
        assert (folder / function / "app.py").is_file(), f"{target}/{lab.id}/{function}/app.py is missing"
        requirements = (folder / function / "requirements.txt").read_text(encoding="utf-8")
        assert not BUNDLED.search(requirements), (
            f"{target}/{lab.id}/{function}/requirements.txt bundles what the runtime or the Powertools layer provides"
        )



def test_the_shipped_starters_are_the_starters_in_labs(lab):
    """`workshop reset` restores workshop/starters/<lab>.zip: it must be what labs/ holds in the repository."""
    from workshop import starters

    changed = starters.changed_files(lab, paths.ROOT / "labs" / lab.id)
    assert not changed, (
        f"workshop/starters/{lab.id}.zip differs from labs/{lab.id} in {changed}: after changing a starter, "
        "run `.venv/bin/workshop verify --refresh-starters` (on untouched labs/) and commit the archive"
    )


def test_every_starter_imports_cleanly(lab, monkeypatch):
    """A starter fails its grader, but never because it cannot even be imported."""
    from moto import mock_aws

    from workshop.lambda_runtime import load_handler

    solution = templates.transformed(lab.folder("solutions") / "template.yaml")
    for _, function in templates.resources_of_type(solution, "AWS::Lambda::Function"):
        for name, value in ((function.get("Environment") or {}).get("Variables") or {}).items():
            # Literal values as the template gives them; a name CloudFormation would generate, made up.
            monkeypatch.setenv(name, value if isinstance(value, str) else f"placeholder-{name.lower()}")
    with mock_aws():
        for function in lab.functions:
            assert callable(load_handler(lab.folder("labs") / function)), f"labs/{lab.id}/{function} has no handler"


def test_events_are_json_named_source_scenario(lab):
    if not lab.functions:  # a lab that only tunes other labs' functions (lab 6) sends no events
        assert not (lab.folder("solutions") / "events").exists(), f"{lab.id} has events but no functions"
        return
    events = sorted((lab.folder("solutions") / "events").glob("*"))
    assert events, f"{lab.id} has no events/"
    for event in events:
        assert EVENT_NAME.match(event.name), f"{paths.relative(event)}: name events <source>_<scenario>.json"
        assert isinstance(json.loads(event.read_text(encoding="utf-8")), dict), f"{paths.relative(event)} is not a JSON object"


def todo_tasks(folder: Path) -> set[int]:
    found: set[int] = set()
    for name in files_under(folder):
        if name.endswith((".py", ".yaml", ".yml", ".txt")):
            found |= {int(n) for n in TODO.findall((folder / name).read_text(encoding="utf-8"))}
    return found


def test_the_starter_marks_every_task_with_a_todo_and_the_solution_none(lab):
    expected = {task.number for task in lab.tasks}
    assert todo_tasks(lab.folder("labs")) == expected, (
        f"{lab.id}: the starter has TODO(task N) for {sorted(todo_tasks(lab.folder('labs')))}; expected {sorted(expected)}"
    )
    assert not todo_tasks(lab.folder("solutions")), f"solutions/{lab.id} still has TODOs"


def grader_tests(lab: manifest.Lab) -> list[ast.FunctionDef]:
    tree = ast.parse(lab.grader.read_text(encoding="utf-8"))
    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")]


def test_every_grader_test_belongs_to_a_task_and_every_task_has_tests(lab):
    numbers = [task_number(test.name) for test in grader_tests(lab)]
    assert None not in numbers, f"{lab.id}: grader tests must be named test_taskN_<behaviour>"
    assert set(numbers) == {task.number for task in lab.tasks}, (
        f"{lab.id}: grader tests cover tasks {sorted(set(numbers))}; the manifest has {len(lab.tasks)}"
    )


def test_every_grader_assertion_carries_a_message_for_the_learner(lab):
    bare = [
        node.lineno
        for node in ast.walk(ast.parse(lab.grader.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert) and node.msg is None
    ]
    assert not bare, f"{paths.relative(lab.grader)}: assertions without a message on lines {bare}"


def test_every_task_has_three_tiers_of_hints(lab):
    thin = [task.number for task in lab.tasks if len(task.hints) < 3]
    assert not thin, f"{lab.id}: tasks {thin} need three hints (a nudge, a pointer, the exact API)"


def test_the_readme_lists_every_lab():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    missing = [lab.id for lab in LABS if f"`{lab.id}`" not in readme]
    assert not missing, f"README.md does not list {missing}"


class _AnyTagLoader(yaml.SafeLoader):
    """mkdocs.yml uses !!python/name tags; the nav does not need them resolved."""


_AnyTagLoader.add_multi_constructor("", lambda loader, suffix, node: None)


def test_the_site_nav_lists_the_labs_in_manifest_order():
    config = yaml.load((paths.ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_AnyTagLoader)
    labs_section = next(entry["Labs"] for entry in config["nav"] if isinstance(entry, dict) and "Labs" in entry)
    pages = [next(iter(item.values())) if isinstance(item, dict) else item for item in labs_section]
    assert pages == [lab.page for lab in LABS], f"mkdocs.yml nav Labs {pages} != manifest {[lab.page for lab in LABS]}"


def test_the_notebook_is_the_same_in_both_trees_and_has_no_outputs(lab):
    starter, solution = (lab.folder(t) / "explore.ipynb" for t in ("labs", "solutions"))
    assert starter.read_bytes() == solution.read_bytes(), f"{lab.id}: labs/ and solutions/ notebooks differ"
    notebook = json.loads(solution.read_text(encoding="utf-8"))
    with_output = [i for i, cell in enumerate(notebook["cells"]) if cell.get("outputs") or cell.get("execution_count")]
    assert not with_output, f"{lab.id}/explore.ipynb has outputs in cells {with_output}: clear them before committing"


PAGE_WIDTH = 88  # what a lab page shows of a code line without scrolling
UNBREAKABLE = re.compile(r"\S{50,}")  # an ARN or URL may run longer


@pytest.mark.parametrize("target", ["labs", "solutions"])
def test_code_fits_the_page_width(lab, target):
    folder = lab.folder(target)
    long_lines = [
        f"{name}:{number}"
        for name in sorted(files_under(folder))
        if name.endswith((".py", ".yaml", ".txt", "Makefile"))
        for number, line in enumerate((folder / name).read_text(encoding="utf-8").splitlines(), start=1)
        if len(line) > PAGE_WIDTH and not UNBREAKABLE.search(line)
    ]
    assert not long_lines, f"{target}/{lab.id}: lines over {PAGE_WIDTH} characters scroll on the page: {long_lines}"


def test_solutions_follow_the_handler_shape(lab):
    for function in lab.functions:
        source = (lab.folder("solutions") / function / "app.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        assert ast.get_docstring(tree), f"{lab.id}/{function}/app.py needs a module docstring"
        problems = [
            f"line {node.lineno}: {kind}"
            for node in ast.walk(tree)
            for kind in (
                ["global"] if isinstance(node, ast.Global) else []
            ) + (["bare except"] if isinstance(node, ast.ExceptHandler) and node.type is None else [])
        ]
        assert not problems, f"{lab.id}/{function}/app.py: {problems}"
        last = tree.body[-1]
        assert isinstance(last, ast.FunctionDef) and last.name == "lambda_handler", (
            f"{lab.id}/{function}/app.py: lambda_handler should come last"
        )


# --- the configuration builds under Zensical too ---------------------------------------------------

# Zensical (Material's successor) reads mkdocs.yml and implements these plugins natively; it runs no
# MkDocs hooks and ignores other plugins, which would silently drop what they render.
ZENSICAL_PLUGINS = {"search"}


def test_the_configuration_uses_only_what_zensical_supports():
    config = yaml.load((paths.ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_AnyTagLoader)
    assert "hooks" not in config, "mkdocs.yml runs MkDocs hooks, which Zensical does not: generate a snippet instead"
    plugins = {next(iter(p)) if isinstance(p, dict) else p for p in config.get("plugins", [])}
    assert plugins <= ZENSICAL_PLUGINS, f"plugins Zensical does not run: {sorted(plugins - ZENSICAL_PLUGINS)}"
