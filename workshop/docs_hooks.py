"""MkDocs hook: show each task's hints, from labs/labs.toml, where a lab page says <!-- hints: task N -->.

Hints live in one place (the manifest), so the site, `workshop check` and the integrity checks never
disagree. They render as collapsed blocks, one per tier, so a learner opens only as much as they need.
"""

from __future__ import annotations

import re

from workshop import manifest

MARKER = re.compile(r"^<!-- hints: task (\d+) -->$", re.M)
TIERS = ("a nudge", "a pointer", "the exact API")


def _hints(lab: manifest.Lab, number: int) -> str:
    if not 1 <= number <= len(lab.tasks):
        raise ValueError(f"docs/{lab.page}: there is no task {number} in {lab.id}")
    blocks = []
    for tier, hint in enumerate(lab.tasks[number - 1].hints):
        title = f"Hint {tier + 1}: {TIERS[tier]}" if tier < len(TIERS) else f"Hint {tier + 1}"
        blocks.append(f'??? tip "{title}"\n    {hint}\n')
    return "\n".join(blocks)


def on_page_markdown(markdown: str, page, config, files) -> str:
    labs = {lab.page: lab for lab in manifest.labs()}
    lab = labs.get(page.file.src_uri)
    if lab is None:
        return markdown
    return MARKER.sub(lambda match: _hints(lab, int(match[1])), markdown)
