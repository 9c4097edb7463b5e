"""edge.camera.retrain with real parts: a camera loop on a folder of frames, the preview over real HTTP with a token,
and a collect folder of real photos in three classes (cat, dog and "mono", grayscale copies). POST /api/model/retrain
learns from them off the loop's thread with edge.learn (the default bundled model as the base: it has a features
output), and the loop's next events are the new model's; a folder with one class fails, the old model keeps running
and the page says why; the POST needs the token, and GET changes nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import catdog.edge.learn
from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.loop import LabelEvent, ModelNotice, WatchConfig, watch
from catdog.edge.camera.preview import Preview
from catdog.edge.camera.preview_config import PreviewConfig
from catdog.edge.camera.retrain import KEEP, MODELS, prune_learned
from catdog.edge.camera.review import Review
from catdog.edge.camera.routes import ACTION_HEADER, parse_request
from catdog.edge.camera.streams import open_stream
from catdog.edge.camera.swap import ModelOptions, ModelSwitch
from catdog.edge.classify import Classifier
from tests.edge.camera.helpers import PATIENCE_S, RUN, to_frame, write_folder
from tests.edge.camera.preview_helpers import TOKEN, get, preview_threads
from tests.photo_trees import copy_photos, three_class_tree

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACT = {**AUTH, ACTION_HEADER: "1"}
RETRAIN = "api/model/retrain"
PER_CLASS = 8


def _serve(switch: ModelSwitch, collect: Path | None) -> Preview:
    review = None if collect is None else Review(collect, switch.running().answers)
    return Preview(PreviewConfig(port=0, token=TOKEN), {"labels": list(switch.running().answers)}, review=review,
                   switch=switch)


def state_of(base: str) -> dict:
    return json.loads(get(base + "api/state", AUTH).body)


@pytest.fixture
def classifier(bundled_model) -> Classifier:
    return Classifier.load(bundled_model)


@pytest.fixture
def switch(classifier, bundled_model) -> ModelSwitch:
    return ModelSwitch(classifier, ModelOptions(path=bundled_model))


@pytest.fixture
def gray_then_color(val_photos, tmp_path) -> Path:
    """2 colour cat frames, then RUN grayscale frames of photos the retrain never sees (the new class "mono")."""
    cats = [to_frame(path) for path in val_photos["cat"][-2:]]
    grays = []
    for path in val_photos["dog"][-RUN // 2:] + val_photos["cat"][-2 - RUN // 2:-2]:
        gray = to_frame(path).mean(axis=2, keepdims=True).astype(np.uint8)
        grays.append(np.repeat(gray, 3, axis=2))
    return write_folder(tmp_path / "frames", cats + grays)


def test_retrain_from_the_page_switches_the_running_loop_to_the_new_classes(
        classifier, switch, data_dir, gray_then_color, tmp_path, monkeypatch):
    collect = three_class_tree(data_dir, tmp_path / "collect", PER_CLASS, "val")
    (collect / "inbox").mkdir()
    real_learn, gate = catdog.edge.learn.learn, threading.Event()

    def gated_learn(config):  # the real learn, held back until the test has seen the run refuse a second one
        assert gate.wait(PATIENCE_S)
        return real_learn(config)

    monkeypatch.setattr(catdog.edge.learn, "learn", gated_learn)
    events, replies, results = [], [], []
    with _serve(switch, collect) as preview:
        base = f"http://127.0.0.1:{preview.port}/"
        assert state_of(base)["retrain"]["state"] == "idle"

        def on_frame(frame, _loop_state) -> None:
            if frame.index == 1:  # the loop waits here until the new model is ready, so its next frames use it
                replies.append(get(base + RETRAIN, {**ACT, "Origin": base.rstrip("/")}, "POST"))  # what the page sends
                replies.append(get(base + RETRAIN, ACT, "POST"))  # while the first one runs
                results.append(state_of(base)["retrain"])
                gate.set()
                results.append(preview.retrainer.wait(PATIENCE_S))

        watch(classifier, open_stream(SourceConfig(str(gray_then_color))), WatchConfig(smooth=5), events.append,
              on_frame=on_frame, switch=switch)
        state = state_of(base)
    assert preview_threads() == [] and not preview.server.failures
    started, refused = replies
    assert started.status == 202 and json.loads(started.body)["message"] == "started"
    assert refused.status == 409 and b"already running" in refused.body
    running, done = results
    assert running["state"] == "running" and running["finished"] is None
    assert done is not None and done.state == "done", done
    learned = sorted((collect / MODELS).glob("*.tflite"))
    assert len(learned) == 1 and done.message == f"done: now {learned[0].name} (labels cat, dog, mono)"
    assert state["model"]["file"] == learned[0].name and state["model"]["labels"][:3] == ["cat", "dog", "mono"]
    assert state["retrain"]["state"] == "done" and state["retrain"]["message"] == done.message
    assert switch.options.path == learned[0]  # a later reload (SIGHUP) reads the learned file
    notices = [e for e in events if isinstance(e, ModelNotice)]
    assert len(notices) == 1 and learned[0].name in notices[0].message and "mono" in notices[0].message
    after = [e.label for e in events if isinstance(e, LabelEvent) and e.frame >= 2]
    assert "mono" in after, [(e.frame, e.label) for e in events if isinstance(e, LabelEvent)]


def test_a_failed_retrain_keeps_the_old_model_and_says_why(switch, data_dir, bundled_model, tmp_path):
    collect = tmp_path / "collect"
    copy_photos(data_dir, collect, 3, "val")
    for path in (collect / "dog").iterdir():
        path.unlink()
    (collect / "dog").rmdir()  # one class: learn refuses
    with _serve(switch, collect) as preview:
        base = f"http://127.0.0.1:{preview.port}/"
        assert get(base + RETRAIN, ACT, "POST").status == 202
        result = preview.retrainer.wait(PATIENCE_S)
        state = state_of(base)
    assert result is not None and result.state == "failed" and result.message.startswith("failed: ")
    assert "class" in result.message and state["retrain"] == result.to_dict()
    assert state["model"]["file"] == bundled_model.name and switch.take() is None
    assert switch.options.path == bundled_model
    notes = switch.drain_messages()
    assert len(notes) == 1 and "old model keeps running" in notes[0] and result.message in notes[0]
    assert not list((collect / MODELS).glob("*.tflite"))


def test_retrain_needs_the_token_and_the_header_and_get_changes_nothing(switch, tmp_path):
    assert parse_request("POST", "/" + RETRAIN).route == "retrain"
    collect = tmp_path / "collect"
    collect.mkdir()
    with _serve(switch, collect) as preview:
        base = f"http://127.0.0.1:{preview.port}/"
        for headers in ({ACTION_HEADER: "1"}, {ACTION_HEADER: "1", "Authorization": "Bearer wrong-token-0123456789"}):
            assert get(base + RETRAIN, headers, "POST").status == 401
        assert get(base + RETRAIN, AUTH, "POST").status == 403  # no action header
        assert get(base + RETRAIN, {**ACT, "Origin": "http://evil.example"}, "POST").status == 403
        for method in ("GET", "HEAD"):
            reply = get(base + RETRAIN, ACT, method)
            assert reply.status == 405 and reply.headers["Allow"] == "POST"
        assert preview.retrainer.status().state == "idle" and state_of(base)["retrain"]["state"] == "idle"
        page = get(base + "review.js", AUTH).body
        assert b"api/model/retrain" in page and b"retrain-status" in page
        assert b'id="retrain"' in get(base + "review", AUTH).body
    assert not (collect / MODELS).exists()
    with _serve(switch, None) as plain:  # without --collect there is nothing to learn from
        reply = get(f"http://127.0.0.1:{plain.port}/" + RETRAIN, ACT, "POST")
        assert reply.status == 404 and b"--collect" in reply.body
        assert plain.retrainer is None and "retrain" not in state_of(f"http://127.0.0.1:{plain.port}/")


def test_older_learned_models_are_pruned_to_the_newest_but_never_the_running_one(tmp_path):
    folder = tmp_path / MODELS
    folder.mkdir()
    names = [f"learned-2026120{day}-120000-000000000" for day in range(1, 7)]
    for name in names:
        (folder / f"{name}.tflite").write_bytes(b"model")
        (folder / f"{name}.json").write_text("{}")
    (folder / "mine.tflite").write_bytes(b"not learned here")
    running = folder / f"{names[0]}.tflite"  # the camera still runs the oldest (switched back to it by hand)

    removed = prune_learned(folder, KEEP, keep_also=running)

    assert [p.name for p in removed] == [f"{n}.tflite" for n in names[1:-KEEP]]
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([f"{n}.{ext}" for n in [names[0], *names[-KEEP:]] for ext in ("tflite", "json")] + ["mine.tflite"])
    assert prune_learned(folder, KEEP, keep_also=running) == []  # nothing more to prune
