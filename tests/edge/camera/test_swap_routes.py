"""The preview's model reload (POST /api/model/reload, edge.camera.swap) over real HTTP: it needs the token, the
action header and this page's origin; GET and HEAD change nothing; a good file is handed to the loop and a damaged
one is refused with why (422), the old model left in place; /api/state and the page show the running model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catdog.edge.camera.preview import Preview
from catdog.edge.camera.preview_config import PreviewConfig
from catdog.edge.camera.routes import ACTION_HEADER, parse_request
from catdog.edge.camera.swap import ModelOptions, ModelSwitch
from catdog.edge.classify import Classifier
from tests.conftest import copy_model_with_contract
from tests.edge.camera.preview_helpers import TOKEN, get, preview_threads

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACT = {**AUTH, ACTION_HEADER: "1"}
RELOAD = "api/model/reload"


@pytest.fixture
def served(camera_model, tmp_path):
    """A preview with a token and a switch whose --model is tmp_path/model.tflite (a copy of the camera model)."""
    path = tmp_path / "model.tflite"
    path.write_bytes(Path(camera_model).read_bytes())
    switch = ModelSwitch(Classifier.load(path), ModelOptions(path=path))
    preview = Preview(PreviewConfig(port=0, token=TOKEN), {"labels": ["cat", "dog"], "model": path.name},
                      switch=switch)
    try:
        yield f"http://127.0.0.1:{preview.port}/", switch, path
    finally:
        preview.close()
    assert preview_threads() == [] and not preview.server.failures


def test_reload_routes_only_as_post():
    assert parse_request("POST", "/api/model/reload").route == "reload"
    for method in ("GET", "HEAD", "PUT"):
        refused = parse_request(method, "/api/model/reload")
        assert (refused.status, refused.allow) == (405, "POST")


def test_a_reload_needs_the_token_the_header_and_the_same_origin_and_get_changes_nothing(served):
    base, switch, _ = served
    for headers in ({ACTION_HEADER: "1"}, {ACTION_HEADER: "1", "Authorization": "Bearer wrong-token-0123456789"}):
        assert get(base + RELOAD, headers, "POST").status == 401
    assert get(base + RELOAD, AUTH, "POST").status == 403  # no action header: what a form of another site sends
    assert get(base + RELOAD, {**ACT, "Origin": "http://evil.example"}, "POST").status == 403
    for method in ("GET", "HEAD"):
        reply = get(base + RELOAD, ACT, method)
        assert reply.status == 405 and reply.headers["Allow"] == "POST"
    assert switch.take() is None and switch.drain_messages() == []  # nothing was loaded


def test_a_reload_hands_the_new_file_to_the_loop_and_state_shows_it(served, tmp_path):
    base, switch, path = served
    state = json.loads(get(base + "api/state", AUTH).body)
    assert state["model"]["file"] == "model.tflite" and state["model"]["labels"] == ["cat", "dog"]
    copy_model_with_contract(path, tmp_path / "staged.tflite", {"labels": ["kitty", "puppy"]}, sidecar=False)
    (tmp_path / "staged.tflite").replace(path)  # atomically, as learn and export write
    reply = get(base + RELOAD, {**ACT, "Origin": base.rstrip("/")}, "POST")  # what the page sends
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json", reply.body
    answer = json.loads(reply.body)
    assert answer["ok"] and answer["model"]["labels"] == ["kitty", "puppy"] and "next frame" in answer["message"]
    taken = switch.take()  # what the loop does before its next frame
    assert taken is not None and taken.answers == ("kitty", "puppy")
    state = json.loads(get(base + "api/state", AUTH).body)
    assert state["model"]["labels"] == ["kitty", "puppy"] and state["model"]["since"] > 0


def test_a_damaged_file_is_refused_with_why_and_the_old_model_stays(served):
    base, switch, path = served
    path.write_bytes(path.read_bytes()[:5000])
    reply = get(base + RELOAD, ACT, "POST")
    assert reply.status == 422, reply.body
    answer = json.loads(reply.body)
    assert not answer["ok"] and answer["model"] is None
    assert "old one keeps running" in answer["message"] and "model.tflite" in answer["message"]
    assert switch.take() is None and switch.drain_messages() == [answer["message"]]  # the loop's Notice
    assert json.loads(get(base + "api/state", AUTH).body)["model"]["labels"] == ["cat", "dog"]


def test_the_page_offers_the_button_only_with_a_switch(served):
    base, _, _ = served
    page = get(base, AUTH).body
    assert b'id="reload"' in page and b"Reload model" in page and b'id="model-since"' in page
    with Preview(PreviewConfig(port=0), {"labels": ["cat"]}) as preview:
        plain = f"http://127.0.0.1:{preview.port}/"
        assert b'id="reload"' not in get(plain).body
        reply = get(plain + RELOAD, {ACTION_HEADER: "1"}, "POST")
        assert reply.status == 404 and b"reload" in reply.body
        assert "model" not in json.loads(get(plain + "api/state").body)
