"""edge.camera.routes and edge.camera.preview_config: request routing, tokens, Host names and the --http address,
with explicit cases and hypothesis properties (every target routes to a known page or a 4xx, never to a path
built from the request)."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import example, given, settings, strategies as st

from catdog.edge.camera.preview_config import PreviewConfig, is_loopback, parse_address
from catdog.edge.camera.routes import PATHS, Request, authorized, cookie_token, host_allowed, parse_request
from catdog.edge.errors import CameraSetupError

TOKEN = "s3cret-Token_1x7Yq"
#: Values that are nearly the token: each must be refused like any other wrong one.
NEAR_MISSES = [TOKEN[:-1], TOKEN[1:], TOKEN + "a", "a" + TOKEN, TOKEN.upper(), TOKEN.lower(), TOKEN.swapcase(),
               TOKEN[:-1] + "X", f"{TOKEN}\x00", f"{TOKEN}%20", "", TOKEN[:8]]
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


_values = st.sampled_from([TOKEN, *NEAR_MISSES]) | st.text(max_size=40)
_schemes = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "Bearer:", "Bearertoken"])


def test_only_the_exact_token_in_a_known_place_opens_and_both_answers_are_seen():
    seen = set()

    @settings(max_examples=400, deadline=None, derandomize=True)
    @given(st.none() | _values, st.none() | _values, st.none() | _values, _schemes)
    def check(query, bearer, cookie, scheme):
        authorization = None if bearer is None else f"{scheme} {bearer}"
        cookie_header = None if cookie is None else f"catdog_token={cookie}"
        # space around the credentials of a header is not part of them; the query and the cookie are taken as they are
        opens = query == TOKEN or cookie == TOKEN or (scheme.lower() == "bearer" and bearer is not None and bearer.strip() == TOKEN)
        assert authorized(TOKEN, Request("state", token=query), authorization, cookie_header) == opens
        seen.add(opens)

    check()
    assert seen == {True, False}  # both branches ran: the right token opens, anything else does not


@pytest.mark.parametrize("near", NEAR_MISSES)
def test_a_near_miss_is_refused_in_every_place(near):
    assert not authorized(TOKEN, Request("state", token=near), f"Bearer {near}", f"catdog_token={near}")
    assert authorized(TOKEN, Request("state", token=near), f"Bearer {TOKEN}", f"catdog_token={near}")


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
    assert is_loopback("127.0.0.1") and not is_loopback("localhost") and not is_loopback("nonsense")


@pytest.mark.parametrize("weak,why", [
    ("password", "16-256"), ("short", "16-256"), ("x" * 257, "16-256"), ("é" * 20, "16-256"),
    ("has space in it, sixteen+", "16-256"), ("semi;colon-token-1234", "16-256"),
    ("passwordpassword", "two kinds"), ("correcthorsebatterystaple", "two kinds"), ("0123456789012345", "two kinds"),
    ("ABCDEFGHIJKLMNOPQ", "two kinds"), ("aaaaaaaaaaaaaaa1", "8 different"), ("pass1234pass1234", "8 different"),
])
def test_a_weak_token_is_refused_with_how_to_make_one(weak, why):
    with pytest.raises(CameraSetupError, match=why) as info:
        PreviewConfig(host="0.0.0.0", token=weak)
    message = str(info.value)
    assert message.startswith("--http-token ") and "\n" not in message and weak not in message
    assert message.endswith("make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(16))'")


def test_generated_tokens_are_accepted():
    # what the error message and docs/camera.md suggest: secrets.token_urlsafe(16), and openssl rand -hex 16
    for token in [TOKEN, *(secrets.token_urlsafe(16) for _ in range(200)), *(secrets.token_hex(16) for _ in range(200))]:
        assert PreviewConfig(host="0.0.0.0", token=token).token == token
    assert is_loopback("127.0.0.1") and not is_loopback("localhost") and not is_loopback("nonsense")


@pytest.mark.parametrize("field,value", [("port", 70000), ("port", -1), ("preview_fps", 0), ("preview_fps", 61),
                                         ("events_kept", 0), ("client_timeout_s", 0), ("max_clients", 0), ("max_pending", 0),
                                         ("jpeg_quality", 0), ("host", "example.com")])
def test_config_is_validated(field, value):
    with pytest.raises(CameraSetupError):
        PreviewConfig(**{field: value})
