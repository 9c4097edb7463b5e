"""pi.emulation: when make test-pi can run, and the one line that says why not."""

from __future__ import annotations

from pi.emulation import registered, why_not

ALL = {"mmdebstrap", "qemu-aarch64-static", "qemu-arm-static", "chroot", "zstd"}


def which_of(present):
    return lambda tool: f"/usr/bin/{tool}" if tool in present else None


def test_root_with_the_tools_can_run():
    assert why_not(uid=0, which=which_of(ALL)) is None


def test_missing_packages_name_the_install_line():
    reason = why_not(uid=0, which=which_of(ALL - {"mmdebstrap"}))
    assert "mmdebstrap" in reason and "apt-get install qemu-user-static binfmt-support mmdebstrap zstd" in reason
    assert "\n" not in reason


def test_not_root_says_to_use_sudo(tmp_path):
    reason = why_not(uid=1000, which=which_of(ALL), binfmt=tmp_path)
    assert "root" in reason and "sudo make test-pi" in reason and "\n" not in reason


def test_a_binfmt_entry_counts_only_enabled_with_the_fix_binary_flag(tmp_path):
    (tmp_path / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n")
    (tmp_path / "qemu-arm").write_text("disabled\ninterpreter /x\nflags: PF\n")
    (tmp_path / "qemu-x").write_text("enabled\ninterpreter /x\nflags: P\n")
    assert registered("qemu-aarch64", tmp_path)
    assert not registered("qemu-arm", tmp_path) and not registered("qemu-x", tmp_path)
    assert not registered("qemu-missing", tmp_path)
