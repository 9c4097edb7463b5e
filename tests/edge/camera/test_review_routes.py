"""The review view's routes (edge.camera.routes, preview_handler) over real HTTP: changes are POSTs that need the
token, the action header, this page's origin and no body; GET changes nothing; bad class names and frame names that
try to leave the inbox are refused; without --collect the review does not exist."""

from __future__ import annotations

import json

import pytest

from catdog.edge.camera.preview import Preview
from catdog.edge.camera.preview_config import PreviewConfig
from catdog.edge.camera.review import Review
from catdog.edge.camera.routes import ACTION_HEADER, ACTIONS, parse_request
from tests.edge.camera.preview_helpers import TOKEN, get, preview_threads, raw, status_of
from tests.edge.camera.test_review import NAMES, files_under, make_inbox

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACT = {**AUTH, ACTION_HEADER: "1"}


@pytest.fixture
def served(tmp_path):
    """A preview with a token serving the review of tmp_path/door (three inbox frames), and a secret beside it."""
    folder = make_inbox(tmp_path / "door")
    (tmp_path / "secret.jpg").write_bytes(b"SECRET")
    preview = Preview(PreviewConfig(port=0, token=TOKEN), {"labels": ["cat", "dog"]},
                      review=Review(folder, ("cat", "dog")))
    try:
        yield preview, f"http://127.0.0.1:{preview.port}/", folder
    finally:
        preview.close()
    assert preview_threads() == [] and not preview.server.failures


def test_actions_route_only_as_post_and_reads_only_as_get():
    for path, route in ACTIONS.items():
        assert parse_request("POST", path + "?frame=" + NAMES[0]).route == route
        for method in ("GET", "HEAD", "PUT", "DELETE"):
            refused = parse_request(method, path)
            assert (refused.status, refused.allow) == (405, "POST")
    for path in ("/review", "/api/review", "/inbox/" + NAMES[0], "/api/state"):
        assert parse_request("GET", path).route is not None
        assert parse_request("POST", path).status == 405
    assert parse_request("POST", "/api/review/label?frame=../x.jpg&class=cat").status == 400
    assert parse_request("GET", "/inbox/..%2fsecret.jpg").status == 400
    assert parse_request("GET", "/inbox/a/b.jpg").status == 404


def test_label_delete_undo_and_add_class_by_post(served):
    preview, base, folder = served
    reply = get(f"{base}api/review/label?frame={NAMES[0]}&class=cat", ACT, "POST")
    assert reply.status == 200, reply.body
    state = json.loads(reply.body)
    assert state["count"] == 2 and state["undo"]["frame"] == NAMES[0]
    assert (folder / "cat" / NAMES[0]).is_file()
    assert get(f"{base}api/review/delete?frame={NAMES[1]}", ACT, "POST").status == 200
    assert (folder / ".trash" / NAMES[1]).is_file()
    assert json.loads(get(f"{base}api/review/undo", ACT, "POST").body)["count"] == 2
    assert (folder / "inbox" / NAMES[1]).is_file()
    assert get(f"{base}api/review/undo", ACT, "POST").status == 409  # one step
    assert json.loads(get(f"{base}api/review/class?class=squirrel", ACT, "POST").body)["classes"] == [
        "cat", "dog", "squirrel"]
    image = get(f"{base}inbox/{NAMES[1]}", AUTH)
    assert image.status == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert image.body == (folder / "inbox" / NAMES[1]).read_bytes()
    assert get(f"{base}inbox/{NAMES[0]}", AUTH).status == 404  # labelled: no longer in the inbox


def test_get_changes_nothing(served):
    preview, base, folder = served
    before = files_under(folder)
    for path in ("review", "review.js", "api/review", f"inbox/{NAMES[0]}",
                 f"api/review/label?frame={NAMES[0]}&class=cat", f"api/review/delete?frame={NAMES[0]}",
                 "api/review/undo", "api/review/class?class=fox"):
        for method in ("GET", "HEAD"):
            reply = get(base + path, ACT, method)
            assert reply.status in (200, 405), (path, reply.status)
            if path.startswith("api/review/"):
                assert reply.status == 405 and reply.headers["Allow"] == "POST"
    assert files_under(folder) == before and not (folder / "fox").exists()


def test_a_change_needs_the_token_the_header_the_same_origin_and_no_body(served):
    preview, base, folder = served
    before = files_under(folder)
    target = f"{base}api/review/label?frame={NAMES[0]}&class=cat"
    assert get(target, {ACTION_HEADER: "1"}, "POST").status == 401
    assert get(target, {ACTION_HEADER: "1", "Authorization": "Bearer wrong-token-0123456789"}, "POST").status == 401
    assert get(target, AUTH, "POST").status == 403  # no action header: what a form of another site sends
    assert get(target, {**ACT, "Origin": "http://evil.example"}, "POST").status == 403
    assert get(target, {**ACT, "Origin": "null"}, "POST").status == 403
    head = (f"POST /api/review/label?frame={NAMES[0]}&class=cat HTTP/1.1\r\nHost: 127.0.0.1:{preview.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n{ACTION_HEADER}: 1\r\n")
    assert status_of(raw(preview.port, (head + "Content-Length: 5\r\n\r\nhello").encode())) == 403
    assert status_of(raw(preview.port, (head + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode())) == 403
    assert files_under(folder) == before
    same_origin = {**ACT, "Origin": f"http://127.0.0.1:{preview.port}"}
    assert get(target, same_origin, "POST").status == 200  # what the review page sends
    cookie = get(f"{base}review?token={TOKEN}").headers["Set-Cookie"].split(";")[0]
    assert get(f"{base}api/review/label?frame={NAMES[1]}&class=dog", {ACTION_HEADER: "1", "Cookie": cookie},
               "POST").status == 200


@pytest.mark.parametrize("cls", ["", "..", "../../etc", "inbox", ".trash", "a+b", "a%20b", "x" * 65, "%2e%2e", "k%C3%A4t"])
def test_bad_class_names_are_refused_with_a_clear_400(served, cls):
    preview, base, folder = served
    before = files_under(folder)
    for action in ("label", "class"):
        reply = get(f"{base}api/review/{action}?frame={NAMES[0]}&class={cls}", ACT, "POST")
        assert reply.status == 400, reply.body
        assert b"class name" in reply.body or b"inbox" in reply.body
    assert files_under(folder) == before and sorted(p.name for p in folder.iterdir()) == ["inbox"]


@pytest.mark.parametrize("frame", ["../secret.jpg", "..%2F..%2Fsecret.jpg", "%2e%2e/secret.jpg", "/etc/passwd",
                                   ".hidden.jpg", NAMES[0] + "%00", "..\\secret.jpg", "x" * 300 + ".jpg"])
def test_frames_outside_the_inbox_are_never_reached(served, frame):
    preview, base, folder = served
    (folder / "inbox" / ".hidden.jpg").write_bytes(b"SECRET")
    before = files_under(folder.parent)
    for target, method in ((f"api/review/label?frame={frame}&class=cat", "POST"),
                           (f"api/review/delete?frame={frame}", "POST"), (f"inbox/{frame}", "GET")):
        reply = get(base + target, ACT, method)
        assert reply.status in (400, 404), (target, reply.status)
        assert b"SECRET" not in reply.body
    assert files_under(folder.parent) == before


def test_without_collect_there_is_no_review(tmp_path):
    with Preview(PreviewConfig(port=0), {"labels": ["cat"]}) as preview:
        base = f"http://127.0.0.1:{preview.port}/"
        for path, method in (("review", "GET"), ("api/review", "GET"), (f"inbox/{NAMES[0]}", "GET"),
                             ("api/review/undo", "POST")):
            reply = get(base + path, {ACTION_HEADER: "1"}, method)
            assert reply.status == 404 and b"--collect" in reply.body
        assert b'href="review"' not in get(base).body
    assert preview_threads() == []
