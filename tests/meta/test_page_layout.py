"""Each lab page, as built, gets a learner to the first task quickly.

A learner who lands on a lab page should see what they will build, the tasks and how to check within a
screen or two; reference material (full events, tables of figures, the solution) waits in collapsed blocks.
Measured on the built site: the text a reader sees in the page's article before the first task's heading
(`id="task-1"`), leaving out what sits inside a collapsed `<details>` (its `<summary>` shows, so it counts).
Runs of white space count as one character. The browser test checks the same goal as a distance on screen.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from workshop import manifest

# The most visible text before task 1 that still fits the opening (what you build, the tasks, how to check).
MAX_CHARS_BEFORE_TASK_1 = 5_000
FIRST_TASK_ID = "task-1"
# Elements that show nothing, whatever their text.
UNSEEN = {"script", "style", "template"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class TextBeforeFirstTask(HTMLParser):
    """Collects the visible text of the page's article until the element with id `task-1` opens."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, whether its text is hidden)
        self.in_article = False
        self.article_depth = 0
        self.found_first_task = False
        self.parts: list[str] = []

    @property
    def hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id") == FIRST_TASK_ID:
            self.found_first_task = True
        if self.found_first_task or tag in VOID:
            return
        if tag == "article" and "md-content__inner" in (attributes.get("class") or ""):
            self.in_article, self.article_depth = True, len(self.stack)
        parent_hidden = self.hidden
        if tag == "summary" and self.stack and self.stack[-1][0] == "details":
            # A collapsed block's summary shows, unless the block itself sits in a hidden one.
            hidden = any(hidden for _, hidden in self.stack[:-1])
        else:
            collapsed = tag == "details" and "open" not in attributes
            hidden = parent_hidden or collapsed or tag in UNSEEN
        self.stack.append((tag, hidden))

    def handle_endtag(self, tag: str) -> None:
        if self.found_first_task or tag in VOID:
            return
        # Pop to the matching tag: HTML may leave some unclosed (<p> before a block).
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break
        if self.in_article and len(self.stack) <= self.article_depth:
            self.in_article = False

    def handle_data(self, data: str) -> None:
        if self.in_article and not self.found_first_task and not self.hidden:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.parts)).strip()


def visible_text_before_first_task(html: str) -> str | None:
    """The text a reader sees before the first task's heading, or None when the page has no `id="task-1"`."""
    parser = TextBeforeFirstTask()
    parser.feed(html)
    parser.close()
    return parser.text if parser.found_first_task else None


def built_page(site: Path, lab: manifest.Lab) -> Path:
    return site / Path(lab.page).with_suffix("") / "index.html"


LABS = manifest.labs()


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_the_first_task_comes_after_at_most_5000_visible_characters(site, lab):
    page = built_page(site, lab)
    text = visible_text_before_first_task(page.read_text(encoding="utf-8"))
    assert text is not None, f"docs/{lab.page}: the built page has no heading with id=\"{FIRST_TASK_ID}\""
    assert len(text) <= MAX_CHARS_BEFORE_TASK_1, (
        f"docs/{lab.page}: a reader sees {len(text):,} characters before Task 1 (at most "
        f"{MAX_CHARS_BEFORE_TASK_1:,}). Open with what the lab builds, its diagram, the tasks and how to check; "
        f"move concepts after the tasks and reference material (events, figures, code) into collapsed '???' "
        f"blocks. The page starts: {text[:300]!r}"
    )


def test_the_measure_leaves_out_collapsed_blocks_but_counts_their_summary():
    html = (
        '<article class="md-content__inner"><p>Seen</p>'
        '<details class="note"><summary>Also seen</summary><p>Not seen</p>'
        '<details open><summary>x</summary><p>Nested, still not seen</p></details></details>'
        '<details open><summary>Open</summary><p>shown</p></details><script>var hidden;</script>'
        '<h3 id="task-1">Task 1</h3><p>After</p></article><footer>Outside</footer>'
    )
    assert visible_text_before_first_task(html) == "SeenAlso seenOpenshown"
    assert visible_text_before_first_task("<article class='md-content__inner'><p>No task</p></article>") is None
    long = '<article class="md-content__inner"><p>' + "word " * 1_200 + '</p><h3 id="task-1">T</h3></article>'
    assert len(visible_text_before_first_task(long)) > MAX_CHARS_BEFORE_TASK_1


def test_a_record_s_json_is_shown_parsed_and_a_poison_message_as_the_string_it_is():
    from workshop import docs_snippets

    event = {"Records": [
        {"messageId": "m-1", "body": '{"order_id": "o-1", "items": [1]}'},
        {"messageId": "m-2", "body": "not json"},
        {"Sns": {"MessageId": "s-1", "Message": '{"order_id": "o-2"}'}},
        {"s3": {"object": {"key": "a.csv"}}},
    ]}
    assert docs_snippets.parsed_records(event) == [
        {"messageId": "m-1", "body": {"order_id": "o-1", "items": [1]}},
        {"messageId": "m-2", "body": "not json"},
        {"MessageId": "s-1", "Message": {"order_id": "o-2"}},
    ]
    assert docs_snippets.parsed_records({"Records": [{"s3": {}}]}) is None


def test_a_lab_s_figures_are_the_rows_that_name_it_or_its_functions():
    from workshop import docs_snippets

    lab3 = manifest.find("lab03")
    assert docs_snippets.row_concerns("Grading lab 3 (the reference solution)", lab3)
    assert docs_snippets.row_concerns("`workshop invoke` order_worker, cold path", lab3)
    assert docs_snippets.row_concerns("Opening a LocalLab (lab 3's stack in moto)", lab3)
    assert not docs_snippets.row_concerns("Grading lab 13 (the reference solution)", lab3)
    assert not docs_snippets.row_concerns("check --all ÷ slowest lab (reference solutions)", lab3)
    assert not docs_snippets.row_concerns("Lab 1 items_api cold start, clients at import", lab3)
