"""The mutation gate (workshop/mutants.py, `make mutants`): what it changes, how it names a mutant, and that
its reviewed list of equivalent mutants never goes stale. The gate's figures themselves are in `make mutants`
(minutes), not here."""

from __future__ import annotations

import ast
import textwrap

import pytest

from workshop import manifest, mutants, variants

LAB = manifest.labs()[0]

SAMPLE = textwrap.dedent(
    '''\
    """A docstring the gate leaves alone."""
    import os

    LIMIT: int = 10


    @logger.inject_lambda_context(log_event=True)
    def handler(event: dict, context) -> dict:
        """Another docstring."""
        if event["count"] <= LIMIT and not event.get("dry"):
            save(event, retries=3)
        return {"total": event["count"] + 1}
    '''
)


@pytest.fixture
def sample_mutants(tmp_path, monkeypatch):
    folder = tmp_path / LAB.id
    folder.mkdir()
    (folder / "app.py").write_text(SAMPLE, encoding="utf-8")
    monkeypatch.setattr(type(LAB), "folder", lambda lab, target: folder)
    return {mutant.name.removeprefix(f"{LAB.id}/app.py "): mutant for mutant in mutants.mutants_of(LAB, folder / "app.py")}


def test_each_mutant_is_one_slip_a_learner_makes(sample_mutants):
    names = set(sample_mutants)
    expected = {
        """handler: event["count"] <= LIMIT -> event['count'] < LIMIT""",
        """handler: event["count"] <= LIMIT and not event.get("dry") -> event['count'] <= LIMIT or not event.get('dry')""",
        """handler: not event.get("dry") -> event.get('dry')""",
        "handler: save(event, retries=3) -> save(event)",
        "handler: save(event, retries=3) -> pass",
        "handler: 3 -> 4",
        """handler: event["count"] + 1 -> event['count'] - 1""",
        'handler: return {"total": event["count"] + 1} -> return None',
        "<module>: @logger.inject_lambda_context(log_event=True) -> no decorator",
        "<module>: 10 -> 11",
    }
    assert expected <= names, sorted(names)


def test_docstrings_and_annotations_are_left_alone(sample_mutants):
    changed = " ".join(sample_mutants)
    assert "docstring" not in changed and "int" not in changed.replace("inject", "")
    assert "dict" not in changed


def test_a_mutant_changes_only_its_place_and_still_parses(sample_mutants):
    mutant = sample_mutants["""handler: event["count"] <= LIMIT -> event['count'] < LIMIT"""]
    ast.parse(mutant.text)
    assert mutant.text == SAMPLE.replace('event["count"] <= LIMIT', "event['count'] < LIMIT")
    removed = sample_mutants["<module>: @logger.inject_lambda_context(log_event=True) -> no decorator"]
    assert "inject_lambda_context" not in removed.text and "def handler" in removed.text


def test_a_repeated_change_gets_a_number_so_each_name_is_unique():
    for lab in manifest.labs():
        names = [mutant.name for mutant in mutants.lab_mutants(lab)]
        assert len(names) == len(set(names)), lab.id


def test_every_mutant_listed_as_equivalent_exists_and_says_why():
    """The reviewed list names today's mutants only: one the reference no longer has is stale."""
    current = {mutant.name for lab in manifest.labs() for mutant in mutants.lab_mutants(lab)}
    listed = mutants.equivalent()
    stale = sorted(set(listed) - current)
    assert not stale, f"no longer mutants of the reference, remove from {mutants.EQUIVALENT.name}: {stale}"
    unexplained = [name for name, why in listed.items() if len(why.split()) < 4]
    assert not unexplained, f"say why each changes nothing a user could see: {unexplained}"


def test_a_mutant_the_page_cares_about_is_killed_and_the_reference_is_not():
    """Two real gradings through the same path as the gate: the reference passes, a slip is caught."""
    from workshop import sandbox

    sandbox.enter()
    slip = next(m for m in mutants.lab_mutants(LAB) if m.name.endswith("get_item: item is None -> item is not None"))
    with variants.reference_copy() as copy:
        assert variants.grade(variants.Variant(LAB, "the reference"), copy).done
        result = variants.grade(variants.Variant(LAB, slip.name, {slip.file: slip.text}), copy)
    assert not result.done and not result.error
    assert not result.tasks[1].passed, "task 2 (get one item, or 404) should catch it"
