"""docs/setup.md explains every line `workshop doctor` can print: a new check without its docs fails here."""

from __future__ import annotations

import re
import socket

import pytest

from workshop import doctor, paths

SETUP = paths.DOCS / "setup.md"


def troubleshooting_terms() -> list[str]:
    """The terms of the definition list under `## Troubleshooting`: the lines just above a `:   ` line."""
    text = SETUP.read_text(encoding="utf-8")
    section = re.search(r"^## Troubleshooting\n(?P<body>.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"{paths.relative(SETUP)} has no `## Troubleshooting` section"
    terms, candidates = [], []
    for line in section["body"].splitlines():
        if line.startswith(":   "):
            terms += candidates
            candidates = []
        elif not line.strip() or line.startswith((" ", "\t")):
            candidates = []
        else:
            candidates.append(line.strip())
    return terms


def findings() -> list[doctor.Finding]:
    """What each of the doctor's checks finds on this machine (only the names and marks matter here)."""
    return [check() for check in doctor.CHECKS]


def test_the_doctor_leaves_the_socket_module_as_it_found_it(monkeypatch):
    # Sentinels, since the test session itself runs inside the same guard the doctor installs.
    before = (lambda *a: None, lambda *a: 0, lambda *a, **k: [])
    monkeypatch.setattr(socket.socket, "connect", before[0])
    monkeypatch.setattr(socket.socket, "connect_ex", before[1])
    monkeypatch.setattr(socket, "getaddrinfo", before[2])
    doctor.offline_guard()
    after = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)
    assert after == before, "workshop doctor's offline check left the network guard patched in"


@pytest.mark.parametrize("finding", findings(), ids=lambda f: f.name)
def test_every_doctor_finding_has_a_troubleshooting_entry(finding):
    mark = "✘" if finding.required else "·"
    term = f"{mark} {finding.name}"
    assert term in troubleshooting_terms(), (
        f"`workshop doctor` can print `{term}`, but {paths.relative(SETUP)} does not explain it: add a "
        f"troubleshooting entry whose term line is exactly `{term}`, then `:   ` what it means and the fix"
    )


def test_every_doctor_entry_is_a_finding_the_doctor_makes():
    names = {f"{'✘' if f.required else '·'} {f.name}" for f in findings()}
    stale = [term for term in troubleshooting_terms() if term[:2] in ("✘ ", "· ") and term not in names]
    assert not stale, f"{paths.relative(SETUP)} explains doctor lines the doctor no longer prints: {stale}"


def test_the_setup_page_shows_how_to_run_the_doctor():
    text = SETUP.read_text(encoding="utf-8")
    assert "## Check your machine: `workshop doctor`" in text and ".venv/bin/workshop doctor" in text
