"""The glossary and the site's tooltips agree: one tooltip per glossary term, saying the definition's first sentence.

docs/glossary.md is a definition list: one or more term lines, then `:   definition`, continued by lines
indented four spaces. docs/snippets/abbreviations.md, appended to every page, holds the tooltips
(Python-Markdown's `*[term]: text`). A tooltip matches its term's exact spelling, so a term that starts a
sentence may have a second tooltip, for its capitalised form, with the same text.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from workshop import paths

GLOSSARY = paths.DOCS / "glossary.md"
ABBREVIATIONS = paths.DOCS / "snippets" / "abbreviations.md"
ABBREVIATION = re.compile(r"^\*\[(?P<term>[^\]]+)\]:[ \t]*(?P<text>.*)$")
MARKUP = re.compile(r"[`*\[\]<>_]")
ABBR = re.compile(r'<abbr title="(?P<title>[^"]*)">(?P<term>[^<]*)</abbr>')


def entries(text: str) -> list[tuple[list[str], str]]:
    """The definition list of a page: (the terms of an entry, its definition as one line of text)."""
    found: list[tuple[list[str], str]] = []
    terms: list[str] = []
    definition: list[str] | None = None
    for line in text.split("\n## ")[0].splitlines():  # the list ends at the first section, if any
        if line.startswith(":   "):
            assert terms, f"{paths.relative(GLOSSARY)}: a definition without a term: {line!r}"
            definition = [line[4:].strip()]
            found.append((terms, ""))
        elif definition is not None and line.startswith("    "):
            definition.append(line.strip())
        elif not line.strip():
            if definition is not None:
                found[-1] = (found[-1][0], " ".join(definition))
                terms, definition = [], None
            else:
                terms = []  # a paragraph of the introduction ended
        elif definition is None:
            terms.append(line.strip())
        else:
            raise AssertionError(f"{paths.relative(GLOSSARY)}: indent every line of a definition by 4 spaces: {line!r}")
    if definition is not None:
        found[-1] = (found[-1][0], " ".join(definition))
    return found


def glossary() -> list[tuple[list[str], str]]:
    return entries(GLOSSARY.read_text(encoding="utf-8"))


def first_sentence(definition: str) -> str:
    return re.split(r"(?<=[.!?])\s+", definition, maxsplit=1)[0]


def tooltips() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in ABBREVIATIONS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        match = ABBREVIATION.match(line)
        assert match, f"{paths.relative(ABBREVIATIONS)}: not an abbreviation (`*[term]: text`): {line!r}"
        assert match["term"] not in found, f"{paths.relative(ABBREVIATIONS)}: {match['term']!r} is defined twice"
        found[match["term"]] = match["text"].strip()
    return found


def expected_tooltips() -> dict[str, str]:
    """Each glossary term with its definition's first sentence."""
    return {term: first_sentence(definition) for terms, definition in glossary() for term in terms}


def test_the_glossary_defines_its_terms_in_alphabetical_order():
    found = glossary()
    assert len(found) >= 25, f"the glossary parsed into only {len(found)} entries: is its layout still `Term` then `:   definition`?"
    names = [terms[0] for terms, _ in found]
    assert names == sorted(names, key=str.casefold), (
        f"{paths.relative(GLOSSARY)}: sort the terms alphabetically (ignoring case): {sorted(names, key=str.casefold)}"
    )
    terms = [term for terms, _ in found for term in terms]
    repeated = sorted({term for term in terms if terms.count(term) > 1})
    assert not repeated, f"{paths.relative(GLOSSARY)}: terms defined twice: {repeated}"
    for terms, definition in found:
        sentence = first_sentence(definition)
        assert sentence.endswith("."), f"{paths.relative(GLOSSARY)}: the definition of {terms[0]!r} is empty or has no full first sentence"
        assert not MARKUP.search(sentence), (
            f"{paths.relative(GLOSSARY)}: the first sentence of {terms[0]!r} is its tooltip, which is plain text: "
            f"move the markup out of it: {sentence!r}"
        )


def test_every_glossary_term_has_its_tooltip():
    defined = tooltips()
    for term, sentence in expected_tooltips().items():
        assert term in defined, (
            f"{paths.relative(ABBREVIATIONS)} has no tooltip for the glossary term {term!r}: add `*[{term}]: {sentence}`"
        )
        assert defined[term] == sentence, (
            f"The tooltip of {term!r} in {paths.relative(ABBREVIATIONS)} is {defined[term]!r}, but its definition in "
            f"{paths.relative(GLOSSARY)} starts {sentence!r}: make them the same (fix the one that is wrong)"
        )


def test_every_tooltip_is_a_glossary_term():
    wanted = expected_tooltips()
    capitalised = {term[:1].upper() + term[1:]: sentence for term, sentence in wanted.items()}
    for term, text in tooltips().items():
        if term in wanted:
            continue
        assert term in capitalised, (
            f"{paths.relative(ABBREVIATIONS)} has a tooltip for {term!r}, which {paths.relative(GLOSSARY)} does not "
            f"define: add it to the glossary (first sentence {text!r}), or remove the tooltip"
        )
        assert text == capitalised[term], (
            f"{paths.relative(ABBREVIATIONS)}: {term!r} is the capitalised form of a glossary term, so its tooltip "
            f"must be that term's: {capitalised[term]!r}"
        )


def rendered(html_file: Path) -> dict[str, str]:
    """The tooltips a built page shows: term -> title."""
    return {unescape(m["term"]): unescape(m["title"]) for m in ABBR.finditer(html_file.read_text(encoding="utf-8"))}


def test_pages_show_the_tooltips(site):
    wanted = expected_tooltips()
    on_glossary = rendered(site / "glossary" / "index.html")
    missing = sorted(term for term in wanted if on_glossary.get(term) != wanted[term])
    assert not missing, f"the glossary page does not render these terms as tooltips (<abbr>): {missing}"
    lab = rendered(site / "labs" / "lab01_api_gateway" / "index.html")
    shown = {term: title for term, title in lab.items() if wanted.get(term) == title}
    assert shown, "lab 1's page shows no glossary tooltip: is the `abbr` extension or the snippets' auto_append gone?"
    assert any(" " in term for term in shown), f"lab 1's page shows no tooltip of a term of several words: {sorted(shown)}"
