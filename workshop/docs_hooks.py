"""MkDocs hook: render what labs/labs.toml holds where a page asks for it.

- `<!-- hints: task N -->` on a lab page: the task's hints, as collapsed blocks, one per tier, so a learner
  opens only as much as they need;
- `<!-- labs table -->`: the course map, one row per lab.

The manifest stays the one place for both, so the site, `workshop check` and the checks never disagree.
"""

from __future__ import annotations

import re

from workshop import manifest

MARKER = re.compile(r"^<!-- hints: task (\d+) -->$", re.M)
LABS_TABLE = "<!-- labs table -->"
TIERS = ("a nudge", "a pointer", "the exact API")


def _hints(lab: manifest.Lab, number: int) -> str:
    if not 1 <= number <= len(lab.tasks):
        raise ValueError(f"docs/{lab.page}: there is no task {number} in {lab.id}")
    blocks = []
    for tier, hint in enumerate(lab.tasks[number - 1].hints):
        title = f"Hint {tier + 1}: {TIERS[tier]}" if tier < len(TIERS) else f"Hint {tier + 1}"
        blocks.append(f'??? tip "{title}"\n    {hint}\n')
    return "\n".join(blocks)


def _labs_table(from_page: str) -> str:
    depth = from_page.count("/")
    rows = [
        f"| [{lab.number} · {lab.title}]({'../' * depth}{lab.page}) | {lab.pattern} | {lab.practice} | "
        f"{lab.minutes} min |"
        for lab in manifest.labs()
    ]
    return "\n".join(["| Lab | Pattern | Best practice | Time |", "| --- | --- | --- | --- |", *rows])


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = markdown.replace(LABS_TABLE, _labs_table(page.file.src_uri))
    labs = {lab.page: lab for lab in manifest.labs()}
    lab = labs.get(page.file.src_uri)
    if lab is None:
        return markdown
    return MARKER.sub(lambda match: _hints(lab, int(match[1])), markdown)
