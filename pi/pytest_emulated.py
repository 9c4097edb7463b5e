"""A pytest plugin for tests/edge inside an emulated Pi (make test-pi loads it with -p pi.pytest_emulated).

Under qemu-user everything runs 20-300x slower than natively, so no test may depend on how fast a
machine is: Hypothesis's per-example deadline (200 ms) is switched off, and its example count is
lowered (the property tests run in full in make test's native environments). Each finished test's
duration is appended to $CATDOG_PI_DURATIONS, so a slow run can be read while it is still going.
"""

from __future__ import annotations

import os
import time

EXAMPLES = int(os.environ.get("CATDOG_PI_EXAMPLES", "10"))


def pytest_configure(config):
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:
        return
    settings.register_profile("emulated-pi", deadline=None, max_examples=EXAMPLES,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("emulated-pi")


def pytest_runtest_logreport(report):
    path = os.environ.get("CATDOG_PI_DURATIONS")
    if path and (report.when == "call" or report.outcome != "passed"):
        with open(path, "a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} {report.duration:8.2f} {report.outcome:8} {report.when:8} {report.nodeid}\n")
