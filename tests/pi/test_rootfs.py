"""pi.rootfs and pi.targets: the root filesystem cache key, the mmdebstrap line, and the targets the issue names."""

from __future__ import annotations

from pi.rootfs import cache_key, mmdebstrap_command
from pi.targets import TARGETS, target_named


def test_cache_key_is_suite_arch_and_package_list_in_any_order():
    key = cache_key("bookworm", "arm64", ["python3", "python3-venv"])
    assert key.startswith("bookworm-arm64-") and key.endswith(".tar.zst")
    assert key == cache_key("bookworm", "arm64", ["python3-venv", "python3", "python3"])
    assert key != cache_key("bookworm", "armhf", ["python3", "python3-venv"])
    assert key != cache_key("trixie", "arm64", ["python3", "python3-venv"])
    assert key != cache_key("bookworm", "arm64", ["python3", "python3-venv", "python3-numpy"])


def test_mmdebstrap_builds_a_tarball_from_the_given_mirror():
    target = target_named("pi3-bookworm-armhf")
    command = mmdebstrap_command(target, "http://mirror.example/debian", "/cache/x.tar.zst")
    assert command[0] == "mmdebstrap" and "--arch=armhf" in command and "--variant=apt" in command
    assert "--include=python3,python3-venv,python3-numpy,python3-pil" in command
    assert command[-3:] == ["bookworm", "/cache/x.tar.zst", "http://mirror.example/debian"]


def test_the_targets_the_issue_names():
    by_name = {t.name: t for t in TARGETS}
    pi4, pi5, pi3 = by_name["pi4-bookworm-arm64"], by_name["pi5-trixie-arm64"], by_name["pi3-bookworm-armhf"]
    assert (pi4.suite, pi4.python, pi4.qemu_cpu, pi4.machine) == ("bookworm", "3.11", "cortex-a72", "aarch64")
    assert (pi5.suite, pi5.python, pi5.qemu_cpu) == ("trixie", "3.13", "cortex-a76")
    assert (pi3.arch, pi3.machine, pi3.qemu) == ("armhf", "armv7l", "qemu-arm")
    assert [e.runtime for e in pi4.environments] == ["litert", "tflite-runtime", "litert"]
    camera = pi4.environments[2]
    assert camera.system_site_packages and "python3-numpy" in pi4.apt and camera.extras == "edge"
    (legacy,) = pi3.environments
    assert legacy.system_site_packages and {"python3-numpy", "python3-pil"} <= set(pi3.apt)
    assert "ai-edge-litert" in pi3.cannot
    assert all(t.qemu_cpu != "max" for t in TARGETS)  # qemu's default CPU gives LiteRT wrong int8 answers
