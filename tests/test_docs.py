"""The commands the README and docs/ show exist: every catdog-edge / catdog-train line in a shell block
names a real command and only options that command has (a renamed or removed flag fails here)."""

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
