"""pi.wheels: every manylinux tag up to the target's glibc, and a download cache keyed by what decides the wheels."""

from __future__ import annotations

import zipfile

from pi.targets import TARGETS, Environment, target_named
from pi.wheels import download_key, manylinux_platforms, pip_download_command, wheel_requirements


def test_every_manylinux_tag_up_to_2_36_for_bookworm():
    tags = manylinux_platforms("aarch64", (2, 36))
    assert tags[0] == "manylinux_2_36_aarch64" and tags[-1] == "manylinux2014_aarch64"
    # the tags the two runtimes need: ai-edge-litert >= 2.0 is manylinux_2_27, tflite-runtime 2.14 is 2_34
    assert {"manylinux_2_27_aarch64", "manylinux_2_34_aarch64", "manylinux_2_17_aarch64"} <= set(tags)
    assert len(tags) == len(set(tags)) == 36 - 17 + 2


def test_pip_download_names_the_target_python_and_machine():
    target = target_named("pi3-bookworm-armhf")
    command = pip_download_command(target, "/tmp/w", ["tflite-runtime==2.14.*"], deps=False)
    assert command[command.index("--python-version") + 1] == "3.11"
    platforms = [command[i + 1] for i, word in enumerate(command) if word == "--platform"]
    assert platforms == manylinux_platforms("armv7l", (2, 36))
    assert "--only-binary=:all:" in command and "--no-deps" in command and command[-1] == "tflite-runtime==2.14.*"


def test_trixie_lists_tags_up_to_its_glibc():
    command = pip_download_command(target_named("pi5-trixie-arm64"), "/tmp/w", ["x"])
    assert "manylinux_2_41_aarch64" in command and "3.13" in command


def test_download_key_changes_with_what_decides_the_wheels_only():
    target = TARGETS[0]
    env = target.environments[0]
    key = download_key(target, env, ["numpy>=1.23"])
    assert key == download_key(target, env, ["numpy>=1.23"]) and key.startswith("py3.11-aarch64-litert-")
    assert key != download_key(target, env, ["numpy>=1.24"])
    assert key != download_key(TARGETS[1], TARGETS[1].environments[0], ["numpy>=1.23"])
    changed = Environment(env.name, env.requirements + ("extra",), extras=env.extras)
    assert key != download_key(target, changed, ["numpy>=1.23"])
    # an environment that installs catdog --no-deps does not depend on catdog's requirements
    legacy = target.environments[1]
    assert download_key(target, legacy, ["numpy>=1.23"]) == download_key(target, legacy, ["numpy>=2"])


def test_wheel_requirements_are_read_from_metadata(tmp_path):
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("x-1.0.dist-info/METADATA", "Name: x\nRequires-Dist: numpy>=1.23\n"
                         "Requires-Dist: ai-edge-litert>=1.2; extra == \"edge\"\n")
    assert wheel_requirements(wheel) == ["numpy>=1.23", 'ai-edge-litert>=1.2; extra == "edge"']
