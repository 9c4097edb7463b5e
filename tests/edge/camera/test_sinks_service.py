"""deploy/catdog-camera.service: its command line is one the camera command accepts, it restarts on failure
but not on a usage error, stops with SIGTERM, and docs/service.md shows exactly this file."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from catdog.edge.camera import SinkConfig
from catdog.edge.cli import app
from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "catdog-camera.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text().replace("\\\n", " "))  # systemd joins lines ending in a backslash
    return parser["Service"]


def test_restarts_on_failure_not_on_usage_errors_and_stops_on_sigterm():
    unit = service()
    assert unit["Restart"] == "on-failure" and unit["RestartPreventExitStatus"] == "2"
    assert unit["KillSignal"] == "SIGTERM" and int(unit["TimeoutStopSec"]) > SinkConfig().flush_s
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"  # systemctl reload: the camera reloads its model


def test_the_command_line_is_one_the_camera_accepts():
    import click

    argv = shlex.split(service()["ExecStart"])
    assert argv[0].endswith("/bin/catdog-edge") and argv[1] == "camera"
    command = app.get_command(click.Context(app), "camera")
    params = command.make_context("camera", argv[2:]).params  # unknown options or bad values raise here
    assert params["http"] and params["mqtt"] and params["mqtt_discovery"] == "door"
    SinkConfig(mqtt=params["mqtt"], mqtt_discovery=params["mqtt_discovery"], spool=params["spool"])
    assert str(params["spool"]).startswith("/var/lib/" + service()["StateDirectory"])


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is not installed (Debian package systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must install it (.ci/run)")
        pytest.skip(reason)
    script = Path(sys.executable).with_name("catdog-edge")
    if not script.exists():
        pytest.skip(f"no catdog-edge console script beside {sys.executable}")
    unit = tmp_path / "catdog-camera.service"
    unit.write_text(re.sub(r"/home/pi/catdog/bin/catdog-edge", str(script), UNIT.read_text()))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "catdog-camera.service" in line]
    assert complaints == []


def test_the_docs_show_this_unit():
    page = (ROOT / "docs" / "service.md").read_text()
    blocks = re.findall(r"```ini\n(.*?)```", page, flags=re.S)
    assert UNIT.read_text() in blocks
