"""The emulated Raspberry Pi targets of make test-pi: what each one installs and runs."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Where the environments live inside a target's root filesystem.
VENVS = "/opt/catdog"


@dataclass(frozen=True)
class Environment:
    """One Python virtual environment inside a target, set up the way a Pi user would."""

    name: str
    """Short name, also the venv's folder under VENVS ("litert", "legacy", ...)."""
    requirements: tuple[str, ...]
    """What pip installs besides catdog's wheel, from wheels downloaded on the host (pip requirement strings)."""
    no_deps: tuple[str, ...] = ()
    """Downloaded without their dependencies, which apt provides (system_site_packages)."""
    extras: str = ""
    """The wheel's extras ("edge,camera,dev"); empty installs the wheel with --no-deps."""
    system_site_packages: bool = False
    """Create the venv with --system-site-packages, so apt's python3-* packages are used."""
    offer: tuple[str, ...] = ()
    """Also downloaded, in a resolution of their own with the wheel's extras: versions PyPI would offer
    a user who does not pin them (numpy 2 for the Pi camera set-up), so the install is tested against them."""
    e2e: bool = True
    """Classify the end-to-end photo set and compare with x86 (False: a few photos as a check)."""
    e2e_photos: int = 0
    """Classify only this many of the end-to-end photos, spread over the set (0: all of them)."""
    runtime: str = "litert"
    """catdog-edge --runtime for the end-to-end run ("litert" or "tflite-runtime")."""
    tests: tuple[str, ...] = ()
    """The tests/edge modules run in this environment, relative to the checkout (RUNTIME_TESTS, PAIR_TESTS;
    ("tests/edge",) for all of it), less NATIVE_ONLY and the tests deselected below; empty: only the checks
    written for it. python -m pi run --tests (make test-pi PI_TESTS=...) runs other tests in every environment."""
    note: str = ""
    """What this environment stands for, for the report."""

    @property
    def venv(self) -> str:
        return f"{VENVS}/{self.name}"


@dataclass(frozen=True)
class Target:
    """A Raspberry Pi model and OS, emulated with qemu-user in a Debian root filesystem."""

    name: str
    """Short name, used for logs, work folders and results."""
    title: str
    """What it stands for, for people."""
    suite: str
    """Debian suite (Raspberry Pi OS is built on it): bookworm, trixie."""
    arch: str
    """Debian architecture: arm64 or armhf."""
    python: str
    """The suite's python3 version, "3.11": wheels are downloaded for it."""
    qemu_cpu: str
    """QEMU_CPU for every process: qemu's default "max" CPU gives wrong int8 results in LiteRT."""
    cpuinfo: str
    """File in pi/cpuinfo/ bound over /proc/cpuinfo (XNNPACK's CPU detection crashes on the host's)."""
    apt: tuple[str, ...]
    """Debian packages in the root filesystem (mmdebstrap --include)."""
    environments: tuple[Environment, ...]
    cannot: tuple[str, ...] = field(default=())
    """Requirements that have no wheel for this target: the run proves that (and for a runtime, that
    catdog-edge tells such a user what to install instead)."""
    broken: str = ""
    """Why catdog does not work on this target as set up; its tests and end-to-end run are still run
    and reported, but do not fail make test-pi (the checks of why do). Empty: it must work."""

    @property
    def machine(self) -> str:
        """The wheel platform's machine name (aarch64, armv7l)."""
        return {"arm64": "aarch64", "armhf": "armv7l"}[self.arch]

    @property
    def qemu(self) -> str:
        """The binfmt_misc entry that runs this architecture."""
        return {"arm64": "qemu-aarch64", "armhf": "qemu-arm"}[self.arch]


#: tests/edge modules left out under emulation, and why. Each is pure Python with nothing that depends on
#: the processor (HTTP servers, sinks, a spool, stream reconnects), its tests wait on sockets and
#: threads, and under qemu they took about 20 minutes per environment; make test runs them natively.
NATIVE_ONLY = (
    "tests/edge/camera/test_preview*.py",
    "tests/edge/camera/test_webhook.py",
    "tests/edge/camera/test_mqtt.py",
    "tests/edge/camera/test_sinks*.py",
    "tests/edge/camera/test_spool.py",
    "tests/edge/camera/test_streams.py",
    # the review view's, the model switch's and the retrain's HTTP routes, browser and SIGHUP tests (the switch
    # itself, test_swap.py, and learn, test_learn.py, run emulated)
    "tests/edge/camera/test_review*.py",
    "tests/edge/camera/test_swap_*.py",
    "tests/edge/camera/test_retrain*.py",
)

#: tests/edge modules whose work is the runtime's, numpy's or Pillow's on this processor: loading and
#: invoking models, their outputs and presence score, preprocessing, learn's numerics and the models it
#: writes, the child-process model probe, the installed package. The Pi 5 (Python 3.13, numpy 2.5) and the
#: 32-bit Pi (armhf, apt's numpy 1.24 and Pillow 9.4) run them. The rest of tests/edge is Python over
#: these answers (CLI, camera loop, contracts) and runs natively in three environments; under emulation
#: it took as long as all of make test's native suites (docs/pi.md#testsedge-under-emulation).
RUNTIME_TESTS = (
    "tests/edge/test_runtime.py",
    "tests/edge/test_classify.py",
    "tests/edge/test_bundled.py",
    "tests/edge/test_signature.py",
    "tests/edge/test_std_metadata.py",
    "tests/edge/test_presence.py",
    "tests/edge/test_preprocess.py",
    "tests/edge/test_modelprobe.py",
    "tests/edge/test_learn.py",
    "tests/edge/test_head.py",
    "tests/edge/test_familiarity.py",
    "tests/edge/test_graft.py",
    "tests/edge/test_install.py",
    "tests/edge/test_no_tensorflow.py",
    "tests/edge/camera/test_smoothing.py",
    "tests/edge/camera/test_picamera.py",
)

#: What only the Pi 4 can run, the one target with both runtimes: their cross-runtime comparison on ARM
#: (its litert environment's tests call the legacy environment's catdog-edge), and the installed package's
#: checks. Its two end-to-end runs compare each runtime with x86 on 200 photos; the Pi 4's Python 3.11 and
#: numpy (2.4 and 1.26) are the native .venv-edge's and .venv-legacy's, and its emulated processor is the
#: slowest (about twice the Pi 5's time per test), so it runs no more than that.
PAIR_TESTS = (
    "tests/edge/test_runtimes_agree.py",
    "tests/edge/test_bundled.py",
    "tests/edge/test_install.py",
    "tests/edge/test_no_tensorflow.py",
)

#: tests/edge tests that pass natively and failed under emulation, deselected there and reported
#: (docs/pi.md): not owned by the Pi tooling. Fix the test, then remove it here.
EMULATION_FAILURES: tuple[str, ...] = ()

#: tests/edge tests the end-to-end run of every environment already does better, deselected under
#: emulation (they run natively): the default model's accuracy on 50 val/ photos, where the end-to-end run
#: classifies 200 with the same model and compares each label and score with x86 (about 90 s on the Pi 4).
COVERED_BY_END_TO_END = (
    "tests/edge/test_classify.py::test_bundled_model_classifies_real_photos",
)

#: The longest tests/edge tests under emulation (each 30-110 s on the emulated Pi 5, twice that on the
#: Pi 4), deselected there because a shorter emulated test already does their processor-dependent part;
#: they run natively. Value: that shorter test, or why nothing depends on the processor.
NATIVE_ONLY_TESTS = {
    "tests/edge/camera/test_loop.py::test_an_empty_scene_is_the_state_none_and_only_the_visits_are_events":
        "the camera's none state is Python over the classifier's answers; test_classify.py::"
        "test_the_default_model_answers_none_for_empty_scenes_and_a_label_for_cats_and_dogs runs emulated",
    "tests/edge/test_classify.py::test_workers_and_interpreter_copies_keep_input_order_and_results[bundled_model]":
        "the same test with [compact_model] runs emulated (the threads and interpreter copies are the same)",
    "tests/edge/test_learn.py::test_learn_runs_without_tensorflow":
        "no emulated environment has TensorFlow: every learn there runs without it (the learned-model fixture)",
    "tests/edge/test_learn.py::test_a_learned_model_can_be_the_base_of_the_next_learn":
        "a second learn on top of the first: the same numerics as the learned-model fixture's, run emulated",
    "tests/edge/test_learn.py::test_empty_scene_photos_in_none_move_the_presence_threshold":
        "the threshold's move is numpy over the features the learned-model fixture computes emulated",
}

DEV = ("pytest>=8", "hypothesis>=6.100")
#: What the Pi camera set-up adds to the [edge] install line (README, docs/camera.md).
CAMERA_PIN = ("numpy<2",)
#: catdog-edge's command-line library (pyproject.toml's requirement), for the installs of the wheel with --no-deps.
CLICK = "click>=8.4"
LEGACY = ("numpy<2", "tflite-runtime==2.14.*", "pillow", CLICK)

#: The targets, the one with the most emulated work first (make test-pi starts its steps first).
TARGETS = (
    Target(
        name="pi4-bookworm-arm64",
        title="Raspberry Pi 4, 64-bit Pi OS bookworm",
        suite="bookworm", arch="arm64", python="3.11", qemu_cpu="cortex-a72", cpuinfo="pi4-arm64.txt",
        apt=("python3", "python3-venv", "python3-numpy"),
        environments=(
            Environment("litert", DEV, extras="edge,camera,dev", tests=PAIR_TESTS, note="the README's install line"),
            # The Pi 4's 200 photos are the litert environment's; this one's 50 are compared with x86's
            # tflite-runtime, and its cross-runtime tests compare it with litert on ARM. The 32-bit Pi
            # classifies 200 with the same tflite-runtime 2.14.
            Environment("legacy", LEGACY + DEV, runtime="tflite-runtime", e2e_photos=50,
                        note="older Pi OS: tflite-runtime 2.14, numpy < 2 (tested by the litert environment's "
                             "cross-runtime tests, which call its catdog-edge)"),
            # ai-edge-litert needs ml_dtypes, whose 0.6 needs numpy >= 2: without the pin pip replaces
            # apt's numpy 1.24 (breaking picamera2's simplejpeg); with it, ml_dtypes 0.5 and apt's numpy.
            Environment("camera", CAMERA_PIN, extras="edge", offer=("numpy>=2",), system_site_packages=True,
                        e2e=False, note="Pi camera set-up: --system-site-packages, apt's python3-numpy"),
        ),
    ),
    Target(
        name="pi5-trixie-arm64",
        title="Raspberry Pi 5, Pi OS trixie",
        suite="trixie", arch="arm64", python="3.13", qemu_cpu="cortex-a76", cpuinfo="pi5-arm64.txt",
        apt=("python3", "python3-venv"),
        environments=(Environment("litert", DEV, extras="edge,camera,dev", tests=RUNTIME_TESTS,
                                  note="the README's install line"),),
    ),
    Target(
        name="pi3-bookworm-armhf",
        title="Raspberry Pi 3 / Zero 2, 32-bit Pi OS bookworm",
        # qemu-arm offers no Cortex-A53; cortex-a7 has the same ARMv7-A + NEON-VFPv4 the armv7l wheels use.
        suite="bookworm", arch="armhf", python="3.11", qemu_cpu="cortex-a7", cpuinfo="pi3-armhf.txt",
        apt=("python3", "python3-venv", "python3-numpy", "python3-pil"),
        environments=(
            Environment("legacy", (CLICK,) + DEV, no_deps=("tflite-runtime==2.14.*",),
                        system_site_packages=True, tests=RUNTIME_TESTS,
                        runtime="tflite-runtime", note="tflite-runtime 2.14, apt's numpy and Pillow"),
        ),
        cannot=("ai-edge-litert",),
    ),
)


def target_named(name: str) -> Target:
    """The target called name.

    Raises:
        KeyError: no such target (the message lists them).
    """
    for target in TARGETS:
        if target.name == name:
            return target
    raise KeyError(f"no Pi target {name!r}; there are {', '.join(t.name for t in TARGETS)}")
