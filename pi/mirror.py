"""The Debian mirror this machine's apt already uses, read from its sources (never a hard-coded host)."""

from __future__ import annotations

import re
from pathlib import Path

#: apt's own places for its sources, in the order apt reads them.
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")


class MirrorError(Exception):
    """No usable Debian mirror in apt's sources."""


def entries_from_one_line(text: str) -> list[tuple[str, str, list[str]]]:
    """(type, uri, suites) of each entry of a one-line sources.list text ("deb [opts] URI SUITE COMPONENTS")."""
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # options such as [signed-by=... arch=...]
        fields = line.split()
        if len(fields) >= 3:
            entries.append((fields[0], fields[1], [fields[2]]))
    return entries


def entries_from_deb822(text: str) -> list[tuple[str, str, list[str]]]:
    """(type, uri, suites) of each type and URI of a deb822 .sources text; stanzas with Enabled: no are left out."""
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:  # a continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for kind in fields.get("types", "").split():
            for uri in fields.get("uris", "").split():
                entries.append((kind, uri, fields.get("suites", "").split()))
    return entries


def debian_mirror(entries: list[tuple[str, str, list[str]]]) -> str:
    """The URI of the first binary ("deb") entry that serves Debian's main archive, not its security
    archive: the one mmdebstrap can build any suite from.

    Raises:
        MirrorError: no such entry.
    """
    for kind, uri, suites in entries:
        if kind != "deb" or "security" in uri or not uri.startswith(("http://", "https://", "file:/")):
            continue
        if any(not s.endswith(("-security", "/updates")) for s in suites):
            return uri.rstrip("/")
    raise MirrorError(
        "no Debian mirror in apt's sources (a 'deb' entry for the main archive in /etc/apt/sources.list "
        "or /etc/apt/sources.list.d/*.sources); set CATDOG_PI_MIRROR=URL to name one"
    )


def machine_mirror(sources_list: Path = SOURCES_LIST, sources_dir: Path = SOURCES_DIR) -> str:
    """The Debian mirror of this machine's apt sources.

    Raises:
        MirrorError: none found.
    """
    entries = []
    if sources_list.is_file():
        entries += entries_from_one_line(sources_list.read_text(errors="replace"))
    if sources_dir.is_dir():
        for path in sorted(sources_dir.iterdir()):
            if path.suffix == ".list":
                entries += entries_from_one_line(path.read_text(errors="replace"))
            elif path.suffix == ".sources":
                entries += entries_from_deb822(path.read_text(errors="replace"))
    return debian_mirror(entries)
