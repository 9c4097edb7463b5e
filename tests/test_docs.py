"""The README and docs/ hold: every catdog-edge / catdog-train line in a shell block names a real command
and only options that command has (a renamed or removed flag fails here), every link between them
reaches a file and heading that exist, and the README stays short enough for a user's first minutes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer

from catdog.edge.cli import app as edge_app
from catdog.trainer.cli import app as train_app
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
APPS = {"catdog-edge": edge_app, "catdog-train": typer.main.get_command(train_app)}  # both as click groups
BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.DOTALL)
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
#: The README serves a user's first ten minutes; the record (tables, campaigns, platforms) lives in docs/.
README_MAX_BYTES = 12_000


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every catdog-edge / catdog-train command in the docs' shell blocks."""
    found = []
    for doc in DOCS:
        for block in BLOCK.findall(doc.read_text()):
            for number, line in enumerate(block.splitlines(), start=1):
                for part in re.split(r"\|\s*|&&\s*", line.split(" #", 1)[0]):
                    words = shlex.split(part.replace("[--format json]", "--format json"))
                    if words and words[0] in APPS:
                        found.append((f"{doc.name}: {shlex.join(words)}", words))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_both_tools():
    assert {argv[0] for _, argv in COMMANDS} == set(APPS)
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_each_documented_command_and_option_exists(where, argv):
    group = APPS[argv[0]]
    words = argv[1:]
    global_options = {opt for param in group.params for opt in param.opts + param.secondary_opts}
    while words and words[0] in global_options:
        words = words[1:]
    assert words, f"{where}: no command given"
    command = group.get_command(click.Context(group), words[0])
    assert command is not None, f"{where}: {argv[0]} has no command {words[0]!r}"
    options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    unknown = [w.split("=", 1)[0] for w in words[1:] if w.startswith("-") and w != "-" and w.split("=", 1)[0] not in options]
    assert not unknown, f"{where}: {argv[0]} {words[0]} has no option {unknown}"


def test_the_readme_stays_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, over {README_MAX_BYTES}: move the record to docs/ and link it"


def anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks): lower case, punctuation
    dropped, spaces as hyphens."""
    found = set()
    for line in FENCE.sub("", doc.read_text()).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def documented_links() -> list[tuple[str, Path, str]]:
    """(where, target file, anchor or "") of every relative link in the README and docs/, code blocks left out."""
    found = []
    for doc in DOCS:
        for target in LINK.findall(FENCE.sub("", doc.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            found.append((f"{doc.relative_to(ROOT)}: {target}", (doc.parent / path).resolve() if path else doc, anchor))
    return found


LINKS = documented_links()


def test_the_docs_link_to_each_other():
    assert any(where.startswith("README.md: docs/") for where, _, _ in LINKS) and len(LINKS) >= 30


@pytest.mark.parametrize("where,target,anchor", LINKS, ids=[w for w, _, _ in LINKS])
def test_each_link_reaches_a_file_and_heading(where, target, anchor):
    assert target.exists(), f"{where}: no such file {target}"
    if anchor and target.suffix == ".md":
        assert anchor in anchors(target), f"{where}: {target.name} has no heading #{anchor}"
