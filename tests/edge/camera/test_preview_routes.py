"""edge.camera.routes and edge.camera.preview_config: request routing, tokens, Host names and the --http address,
with explicit cases and hypothesis properties (every target routes to a known page or a 4xx, never to a path
built from the request)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings, strategies as st

from catdog.edge.camera.preview_config import PreviewConfig, is_loopback, parse_address
from catdog.edge.camera.routes import PATHS, Request, authorized, cookie_token, host_allowed, parse_request
from catdog.edge.errors import CameraSetupError

TOKEN = "s3cret-token_1"
TRAVERSALS = ["../", "..%2f", "%2e%2e/", "..\\", "/etc/passwd", "....//", "%00", "..;/", "%252e%252e%252f"]


def test_known_paths_route_and_events_take_after():
    for path, route in PATHS.items():
        assert parse_request("GET", path) == Request(route)
        assert parse_request("HEAD", path).route == route
    assert parse_request("GET", "/api/events?after=41") == Request("events", after=41)
    assert parse_request("GET", "/events/7.jpg") == Request("event-snapshot", event_id=7)
    assert parse_request("GET", "/?token=abc&_=1699") == Request("page", token="abc")


def test_refusals_say_why():
    assert parse_request("POST", "/api/state").status == 405
    assert parse_request("GET", "http://evil/").status == 400
    assert parse_request("GET", "//evil.example/").status == 400
    assert parse_request("GET", "/api/events?after=-1").status == 400
    assert parse_request("GET", "/api/events?" + "&".join(f"x{i}=1" for i in range(9))).status == 400
    assert parse_request("GET", "/index.html").status == 404
    assert parse_request("GET", "/events/١.jpg").status == 404  # non-ASCII digits are not ids
    assert all(r.reason and "\n" not in r.reason for r in (parse_request("PUT", "/"), parse_request("GET", "/x")))


@pytest.mark.parametrize("evil", TRAVERSALS)
def test_path_traversal_in_every_parameter_is_refused(evil):
    for target in (f"/{evil}", f"/events/{evil}1.jpg", f"/events/1.jpg/{evil}", f"/api/{evil}state",
                   f"/snapshot.jpg/{evil}", f"/stream.mjpg{evil}"):
        refused = parse_request("GET", target)
        assert refused.route is None and refused.status in (400, 404), target
    assert parse_request("GET", f"/api/events?after={evil}").status == 400
    # token and unknown fields never name anything: the route stays what the path says
    assert parse_request("GET", f"/api/state?token={evil}&file={evil}").route == "state"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from(["GET", "HEAD", "POST", "get", "OPTIONS", ""]), st.text(max_size=120))
@example("GET", "/events/../../etc/passwd.jpg")
@example("GET", "/events/1.jpg\x00.png")
def test_every_target_routes_to_a_known_route_or_a_4xx(method, target):
    request = parse_request(method, target)
    if request.route is None:
        assert 400 <= request.status < 500 and request.reason
    else:
        assert request.status == 200 and method in ("GET", "HEAD")
        path = target.partition("?")[0]
        assert path in PATHS or (request.route == "event-snapshot" and path == f"/events/{request.event_id}.jpg")
        assert request.after >= 0


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_a_wrong_or_missing_token_is_never_authorized(query, bearer, cookie, scheme):
    wrong = [value for value in (query, bearer, cookie) if value != TOKEN]
    request = Request("state", token=query if query in wrong else None)
    authorization = f"{scheme} {bearer}" if bearer in wrong else None
    assert not authorized(TOKEN, request, authorization, f"catdog_token={cookie}" if cookie in wrong else None)


def test_the_token_is_accepted_in_each_place_and_not_needed_without_one():
    assert authorized(TOKEN, Request("state", token=TOKEN), None, None)
    assert authorized(TOKEN, Request("state"), f"Bearer {TOKEN}", None)
    assert authorized(TOKEN, Request("state"), f"bearer  {TOKEN} ", None)
    assert authorized(TOKEN, Request("state"), None, f"theme=dark; catdog_token={TOKEN}")
    assert not authorized(TOKEN, Request("state"), f"Basic {TOKEN}", f"other={TOKEN}")
    assert not authorized(TOKEN, Request("state", token=TOKEN[:-1]), None, None)
    assert authorized(None, Request("state"), None, None)
    assert cookie_token('a=1; catdog_token="x"') == "x" and cookie_token(None) is None


def test_only_loopback_host_names_without_a_token():
    for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "127.1.2.3", "[::1]:8080", "LOCALHOST", None):
        assert host_allowed(host), host
    for host in ("evil.example", "evil.example:8080", "192.168.1.5", "localhost.evil.example", "[::]:80", "", "0.0.0.0"):
        assert not host_allowed(host), host


def test_http_address_forms():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0") == ("127.0.0.1", 0)
    assert parse_address("localhost:81") == ("127.0.0.1", 81)
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address("[::]:8080") == ("::", 8080)
    assert parse_address(" 192.168.1.20:65535 ") == ("192.168.1.20", 65535)
    for bad in ("", "http", "65536", ":8080", "0.0.0.0:", "mypi.local:8080", "[::1]", "１２３", "1.2.3.4:80x", "-1"):
        with pytest.raises(CameraSetupError, match="--http"):
            parse_address(bad)


def test_listening_beyond_loopback_needs_a_good_token():
    assert PreviewConfig().loopback and PreviewConfig(host="::1").loopback
    assert not PreviewConfig(host="0.0.0.0", token=TOKEN).loopback
    with pytest.raises(CameraSetupError, match="--http-token"):
        PreviewConfig(host="0.0.0.0")
    with pytest.raises(CameraSetupError, match="--http-token"):
        PreviewConfig(host="192.168.1.20")
    for bad in ("short", "has space in it", "semi;colon-token", "é" * 10, "x" * 257):
        with pytest.raises(CameraSetupError, match="openssl rand"):
            PreviewConfig(token=bad)
    assert is_loopback("127.0.0.1") and not is_loopback("localhost") and not is_loopback("nonsense")


@pytest.mark.parametrize("field,value", [("port", 70000), ("port", -1), ("preview_fps", 0), ("preview_fps", 61),
                                         ("events_kept", 0), ("client_timeout_s", 0), ("max_clients", 0),
                                         ("jpeg_quality", 0), ("host", "example.com")])
def test_config_is_validated(field, value):
    with pytest.raises(CameraSetupError):
        PreviewConfig(**{field: value})
