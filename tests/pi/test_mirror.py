"""pi.mirror: the Debian mirror is read from apt's sources in either format, never assumed."""

from __future__ import annotations

import pytest

from pi.mirror import MirrorError, debian_mirror, entries_from_deb822, entries_from_one_line, machine_mirror

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_sources_give_the_main_archive_not_security_nor_comments():
    entries = entries_from_deb822(DEB822)
    assert entries == [("deb", "http://mirror.example/debian", ["bookworm", "bookworm-updates"]),
                       ("deb", "http://mirror.example/debian-security", ["bookworm-security"])]
    assert debian_mirror(entries) == "http://mirror.example/debian"


def test_disabled_and_source_only_stanzas_are_skipped():
    text = ("Types: deb\nURIs: http://off.example/debian\nSuites: trixie\nEnabled: no\n\n"
            "Types: deb-src\nURIs: http://src.example/debian\nSuites: trixie\n\n"
            "Types: deb deb-src\nURIs: https://on.example/debian/\nSuites: trixie\n")
    assert debian_mirror(entries_from_deb822(text)) == "https://on.example/debian"


def test_one_line_format_with_options_and_comments():
    text = ("# deb http://commented.example/debian bookworm main\n"
            "deb http://security.example/debian-security bookworm-security main\n"
            "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://one.example/debian bookworm main contrib\n")
    assert debian_mirror(entries_from_one_line(text)) == "http://one.example/debian"


def test_no_mirror_says_how_to_name_one():
    with pytest.raises(MirrorError, match="CATDOG_PI_MIRROR"):
        debian_mirror(entries_from_one_line("deb http://security.example/debian-security bookworm-security main\n"))


def test_machine_mirror_reads_sources_list_then_the_folder(tmp_path):
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(DEB822)
    (folder / "other.list.disabled").write_text("deb http://ignored.example/debian bookworm main\n")
    assert machine_mirror(tmp_path / "sources.list", folder) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb http://first.example/debian bookworm main\n")
    assert machine_mirror(tmp_path / "sources.list", folder) == "http://first.example/debian"
