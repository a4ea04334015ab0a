"""docs/runbook.md and the checks stay in step: every check has its section, quoted, in three parts, and links it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RUNBOOK = Path(__file__).parents[1] / "docs" / "runbook.md"
SUFFIX = " Runbook: docs/runbook.md#"
PARTS = ("**What it means.**", "**Look first.**", "**What to do.**")
#: a level-2 heading that is one identifier names a check (other sections have words with spaces)
CHECK_HEADING = re.compile(r"^## ([A-Za-z0-9_]+)\s*$", re.MULTILINE)


def sections(text: str) -> dict[str, str]:
    """Each check section's body (up to the next level-2 heading), by its heading."""
    heads = list(re.finditer(r"^## .*$", text, re.MULTILINE))
    out: dict[str, str] = {}
    for i, head in enumerate(heads):
        match = CHECK_HEADING.match(head.group(0))
        if match:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            out[match.group(1)] = text[head.end():end]
    return out


@pytest.fixture(scope="module")
def checks() -> dict[str, str]:
    """Every asset check of the real code location: name -> description."""
    from pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    return {key.name: graph.get_check_spec(key).description or "" for key in graph.asset_check_keys}


@pytest.fixture(scope="module")
def runbook() -> dict[str, str]:
    return sections(RUNBOOK.read_text(encoding="utf-8"))


def test_every_check_has_its_section_quoting_its_description_in_three_parts(checks, runbook):
    assert checks, "no asset checks loaded"
    missing = sorted(set(checks) - set(runbook))
    assert not missing, f"docs/runbook.md has no section '## <name>' for: {missing}"
    for name, description in checks.items():
        body = runbook[name]
        assert description.endswith(SUFFIX + name), f"{name}: description does not end with the runbook link"
        quote = description[: -len(SUFFIX + name)]
        assert f"> {quote}\n" in body, f"{name}: the section does not quote the description verbatim: {quote!r}"
        for part in PARTS:
            assert part in body, f"{name}: the section lacks {part}"
            after = body.split(part, 1)[1].split("**", 1)[0].strip()
            assert after, f"{name}: {part} is empty"


def test_no_section_names_a_check_that_does_not_exist(checks, runbook):
    assert sorted(set(runbook) - set(checks)) == []


def test_the_link_names_an_anchor_the_heading_makes():
    """GitHub's anchor of `## residual_pii_zero` is `#residual_pii_zero`: lower case, underscores kept."""
    for name in sections(RUNBOOK.read_text(encoding="utf-8")):
        assert name == name.lower() and re.fullmatch(r"[a-z0-9_]+", name), name


def test_with_runbook_puts_one_line_and_the_link_together():
    from pipeline.defs.partitions import with_runbook

    assert with_runbook("Two\n    lines.", "x_check") == "Two lines. Runbook: docs/runbook.md#x_check"
    with pytest.raises(ValueError, match="needs a description"):
        with_runbook("  ", "x_check")
