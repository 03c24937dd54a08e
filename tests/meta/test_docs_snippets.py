"""The Markdown generated from labs/labs.toml (hints, labs table) is committed, current, and renders."""

from __future__ import annotations

import markdown
import pytest
from pymdownx.snippets import SnippetMissingError

from workshop import docs_snippets, manifest, paths

LAB1 = manifest.find("lab01")


def convert(text: str) -> str:
    """`text` as the site renders it: the snippets, admonition and details extensions of mkdocs.yml."""
    extensions = ["admonition", "pymdownx.details", "pymdownx.snippets"]
    config = {"pymdownx.snippets": {"base_path": [str(paths.ROOT)], "check_paths": True}}
    return markdown.Markdown(extensions=extensions, extension_configs=config).convert(text)


def test_the_committed_snippets_are_what_labs_toml_renders():
    problems = docs_snippets.problems(docs_snippets.render(manifest.labs()))
    assert not problems, (
        "docs/snippets/generated/ does not match labs/labs.toml:\n  " + "\n  ".join(problems)
        + f"\nRegenerate with: {docs_snippets.WRITE}"
    )


def test_a_page_shows_one_task_s_hints_as_collapsed_tips():
    html = convert(docs_snippets.hints_include(LAB1, 2))
    assert html.count('<details class="tip">') == len(LAB1.tasks[1].hints) + len(LAB1.tasks[1].checks), html
    assert "Hint 3: the exact API" in html and "NotFoundError" in html, html
    assert "LastEvaluatedKey" not in html, "the include shows another task's hints too"


def test_a_task_the_lab_does_not_have_is_refused_with_its_range():
    for number in (0, len(LAB1.tasks) + 1):
        with pytest.raises(ValueError, match=rf"docs/labs/lab01_api_gateway.md: .* tasks 1 to 5, not task {number}"):
            docs_snippets.hints_include(LAB1, number)
    # A page that includes it anyway fails the (strict) build, naming the section.
    with pytest.raises(SnippetMissingError, match="'task9' could not be located"):
        convert('--8<-- "docs/snippets/generated/hints/lab01_api_gateway.md:task9"')


def test_a_task_without_hints_is_an_error_that_names_it():
    labs = manifest.parse(
        '[[lab]]\nid = "lab09_bare"\ntitle = "t"\npattern = "p"\npractice = "b"\nfunctions = []\nminutes = 1\n'
        '[[lab.task]]\ntitle = "with hints"\nhints = ["a nudge"]\n'
        '[[lab.task]]\ntitle = "without"\n'
    )
    with pytest.raises(ValueError, match=r"labs/labs.toml: lab09_bare, task 2 has no hints"):
        docs_snippets.render(labs)


def test_check_lists_stale_missing_and_extra_files_and_write_fixes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(docs_snippets, "GENERATED", tmp_path)
    assert docs_snippets.main(["--write"]) == 0
    (tmp_path / "hints" / "lab01_api_gateway.md").write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / "labs-table.md").unlink()
    (tmp_path / "hints" / "lab99_gone.md").write_text("", encoding="utf-8")
    capsys.readouterr()

    assert docs_snippets.main(["--check"]) == 1
    out = capsys.readouterr().out
    for expected in ("stale: ", "lab01_api_gateway.md", "missing: ", "labs-table.md", "extra ", "lab99_gone.md"):
        assert expected in out, out
    assert docs_snippets.WRITE in out

    assert docs_snippets.main(["--write"]) == 0
    assert docs_snippets.main(["--check"]) == 0
    assert not (tmp_path / "hints" / "lab99_gone.md").exists()
