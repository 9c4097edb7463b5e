"""edge.camera.swap with the camera loop: a running loop switches model between two frames (the events after the
switch are the new model's; the smoothed label carries on with the same answers and restarts with new ones), a
reload reads the model file again with the same options, and a damaged file leaves the old model running and says
why. Swaps happen at chosen frames (the loop's on_frame hook), never at a time."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.loop import LabelEvent, ModelNotice, Notice, WatchConfig, watch
from catdog.edge.camera.streams import open_stream
from catdog.edge.camera.swap import ModelInfo, ModelOptions, ModelSwitch
from catdog.edge.classify import Classifier
from tests.conftest import copy_model_with_contract
from tests.edge.camera.helpers import PATIENCE_S, RUN, cat_dog_cat, write_folder

SMOOTH = 5
#: With --smooth 5 a label needs 4 of the last 5 votes: it is reported on the 4th frame of a run.
REPORTED_AFTER = 3


@pytest.fixture(scope="module")
def renamed(camera_model, tmp_path_factory) -> Path:
    """The camera model with its labels renamed kitty, puppy: the same answers by index, told apart by name."""
    return copy_model_with_contract(camera_model, tmp_path_factory.mktemp("renamed") / "renamed.tflite",
                                    {"labels": ["kitty", "puppy"]})


@pytest.fixture(scope="module")
def cat_dog_cat_folder(confident_frames, tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("frames") / "cdc", cat_dog_cat(confident_frames))


def _run_swapping(classifier, folder: Path, at: int, new) -> tuple[list, ModelSwitch]:
    """Run the loop over folder and hand it `new` (a classifier, or a callable run then) once frame `at` is handled."""
    switch = ModelSwitch(classifier)
    events: list = []

    def on_frame(frame, _state) -> None:
        if frame.index == at:
            if callable(new) and not isinstance(new, Classifier):
                new(switch)
            else:
                switch.swap(new)

    watch(classifier, open_stream(SourceConfig(str(folder))), WatchConfig(smooth=SMOOTH), events.append,
          on_frame=on_frame, switch=switch)
    return events, switch


def _labels(events) -> list[tuple[int, str]]:
    return [(e.frame, e.label) for e in events if isinstance(e, LabelEvent)]


def test_new_labels_restart_smoothing_and_the_events_after_the_swap_are_the_new_models(
        classifier, renamed, cat_dog_cat_folder):
    new = Classifier.load(renamed)
    events, switch = _run_swapping(classifier, cat_dog_cat_folder, 2 * RUN - 1, new)
    assert _labels(events) == [(REPORTED_AFTER, "cat"), (RUN + REPORTED_AFTER, "dog"),
                               (2 * RUN + REPORTED_AFTER, "kitty")], events
    notices = [e for e in events if isinstance(e, ModelNotice)]
    assert len(notices) == 1 and notices[0].classifier is new and not notices[0].carried
    assert "renamed.tflite" in notices[0].message and "kitty, puppy" in notices[0].message
    assert "restarts" in notices[0].message
    # the notice comes between the last old event and the first new one
    kinds = [e.label if isinstance(e, LabelEvent) else "swap" for e in events
             if isinstance(e, (LabelEvent, ModelNotice))]
    assert kinds == ["cat", "dog", "swap", "kitty"]
    assert switch.running() == ModelInfo("renamed.tflite", ("kitty", "puppy"), switch.running().since)


def test_the_same_answers_carry_the_smoothed_label_on(classifier, camera_model, cat_dog_cat_folder, tmp_path):
    """Mid dog run, after its event: a restarted smoother would report dog again four frames later; it does not."""
    same = tmp_path / "same.tflite"
    same.write_bytes(Path(camera_model).read_bytes())
    events, _ = _run_swapping(classifier, cat_dog_cat_folder, RUN + REPORTED_AFTER + 1, Classifier.load(same))
    assert _labels(events) == [(REPORTED_AFTER, "cat"), (RUN + REPORTED_AFTER, "dog"),
                               (2 * RUN + REPORTED_AFTER, "cat")], events
    notices = [e for e in events if isinstance(e, ModelNotice)]
    assert len(notices) == 1 and notices[0].carried and "carries on" in notices[0].message


def test_reload_reads_the_file_again_with_the_same_options(classifier, camera_model, renamed, cat_dog_cat_folder,
                                                           tmp_path):
    """The file behind --model is replaced (as learn or an export does, atomically), then reloaded mid-run: the
    events after it are the new file's, and the threshold given keeps applying."""
    path = tmp_path / "model.tflite"
    path.write_bytes(Path(camera_model).read_bytes())
    options = ModelOptions(path=path, threshold=0.6)
    running = options.load()
    results = []

    def replace_and_reload(switch: ModelSwitch) -> None:
        switch.options = options
        staged = tmp_path / "staged.tflite"
        staged.write_bytes(renamed.read_bytes())
        staged.replace(path)
        results.append(switch.reload())

    events, switch = _run_swapping(running, cat_dog_cat_folder, 2 * RUN - 1, replace_and_reload)
    assert results[0].ok and results[0].model.answers == ("kitty", "puppy"), results
    assert _labels(events)[-1] == (2 * RUN + REPORTED_AFTER, "kitty"), events
    notice = next(e for e in events if isinstance(e, ModelNotice))
    assert notice.classifier.threshold == 0.6 and notice.classifier.model_path == path


def test_a_damaged_file_keeps_the_old_model_running_and_says_why(classifier, camera_model, cat_dog_cat_folder,
                                                                 tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(Path(camera_model).read_bytes()[:5000])  # cut short, as a copy that failed half-way
    results = []

    def reload(switch: ModelSwitch) -> None:
        switch.options = ModelOptions(path=path)
        results.append(switch.reload())

    events, switch = _run_swapping(classifier, cat_dog_cat_folder, RUN, reload)
    assert not results[0].ok and results[0].model is None
    assert "old one keeps running" in results[0].message and "model.tflite" in results[0].message
    assert _labels(events) == [(REPORTED_AFTER, "cat"), (RUN + REPORTED_AFTER, "dog"),
                               (2 * RUN + REPORTED_AFTER, "cat")], events
    warnings = [e for e in events if type(e) is Notice]
    assert [w.message for w in warnings] == [results[0].message]
    assert not any(isinstance(e, ModelNotice) for e in events)
    assert switch.running().file == Path(classifier.model_path).name


def test_a_missing_file_and_a_contract_mismatch_are_refused(camera_model, tmp_path):
    running = Classifier.load(camera_model)
    switch = ModelSwitch(running, ModelOptions(path=tmp_path / "gone.tflite"))
    result = switch.reload()
    assert not result.ok and "gone.tflite" in result.message
    # --presence-threshold given, and the new model has no presence score: its options cannot apply
    switch.options = ModelOptions(path=camera_model, presence_threshold=0.5)
    result = switch.reload()
    assert not result.ok and "presence" in result.message
    assert switch.take() is None and len(switch.drain_messages()) == 2 and switch.drain_messages() == []
    assert not ModelSwitch(running).reload().ok  # no options: nothing to read again


def test_swap_hands_over_only_the_newest_and_only_once(classifier, camera_model):
    switch = ModelSwitch(classifier)
    first, second = Classifier.load(camera_model), Classifier.load(camera_model)
    switch.swap(first)
    switch.swap(second)
    assert switch.take() is second and switch.take() is None


def test_request_reload_loads_on_the_switchs_thread(classifier, renamed):
    switch = ModelSwitch(classifier, ModelOptions(path=renamed)).start()
    try:
        switch.request_reload()
    finally:
        switch.close()  # joins the thread: the load asked for is done
    taken = switch.take()
    assert taken is not None and taken.answers == ("kitty", "puppy")


def test_the_loop_keeps_classifying_while_a_model_loads(classifier, renamed, cat_dog_cat_folder):
    """The load waits for frames the loop handles after the reload was asked for (it would never end if it ran on
    the loop's thread); the loop is then held until the model is handed over, so the switch lands at a known frame."""
    gate, handed = threading.Event(), threading.Event()
    asked = RUN

    class GatedOptions(ModelOptions):
        def load(self):
            assert gate.wait(PATIENCE_S), "the loop never got past the reload"
            return super().load()

    class Switch(ModelSwitch):
        def swap(self, new) -> None:
            super().swap(new)
            handed.set()

    switch = Switch(classifier, GatedOptions(path=renamed)).start()
    handled: list[int] = []
    events: list = []

    def on_frame(frame, _state) -> None:
        handled.append(frame.index)
        if frame.index == asked:
            switch.request_reload()
        elif frame.index == asked + 3:
            gate.set()
        elif frame.index == asked + 4:
            assert handed.wait(PATIENCE_S), "the model was never handed over"

    try:
        watch(classifier, open_stream(SourceConfig(str(cat_dog_cat_folder))), WatchConfig(smooth=SMOOTH),
              events.append, on_frame=on_frame, switch=switch)
    finally:
        switch.close()
    assert handled == list(range(3 * RUN))
    # smoothing restarts at frame asked + 5: four of the last dog frames, then four cats
    assert _labels(events) == [(REPORTED_AFTER, "cat"), (RUN + REPORTED_AFTER, "dog"),
                               (asked + 5 + REPORTED_AFTER, "puppy"), (2 * RUN + REPORTED_AFTER, "kitty")], events


def test_a_reloads_warnings_reach_the_loop_one_line_each(classifier, camera_model, tmp_path):
    newer = copy_model_with_contract(camera_model, tmp_path / "newer.tflite", {"from_the_future": 1}, sidecar=False)
    switch = ModelSwitch(classifier, ModelOptions(path=newer))
    assert switch.reload().ok
    messages = switch.drain_messages()
    assert len(messages) == 1 and "from_the_future" in messages[0] and "\n" not in messages[0], messages


def test_switching_to_a_model_with_a_presence_score_makes_an_empty_scene_none(classifier, bundled_model,
                                                                              nothing_photos, tmp_path):
    """The compact model (cat, dog) must call an empty porch one of them; the default model, switched to mid-run,
    has a presence score and answers none: the events after the switch are its answers."""
    from tests.edge.camera.helpers import to_frame

    default = Classifier.load(bundled_model)
    empty = [f for f in map(to_frame, nothing_photos[:8 * SMOOTH]) if default.classify(f).label == "none"]
    assert len(empty) >= 2 * SMOOTH, f"only {len(empty)} empty frames answered none"
    folder = write_folder(tmp_path / "porch", empty[:2 * SMOOTH])
    events, _ = _run_swapping(classifier, folder, SMOOTH - 1, default)
    at = next(i for i, e in enumerate(events) if isinstance(e, ModelNotice))
    assert "answers cat, dog, none" in events[at].message and not events[at].carried
    assert all(e.label in ("cat", "dog") for e in events[:at] if isinstance(e, LabelEvent))
    assert _labels(events[at:]) == [(SMOOTH + REPORTED_AFTER, "none")], events
