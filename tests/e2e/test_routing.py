"""Routing: which route a request takes, and what path the upstream receives.

Every test asserts on what the origin actually received on the wire (``origin.requests``)."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from support.configs import one_route
from support.rawhttp import build_request, raw_request


def client(gw) -> httpx.Client:
    return httpx.Client(base_url=gw.proxy_url, timeout=10)


def raw_get(gw, target: str, headers=None):
    return raw_request(gw.proxy_port, build_request("GET", target, headers), check_closed=False)


def assert_error(resp, status: int, code: str | None = None) -> dict:
    """The gateway's stable JSON error body."""
    assert resp.status_code == status if hasattr(resp, "status_code") else resp.status == status
    body = resp.json()
    err = body["error"]
    assert set(err) >= {"code", "message", "request_id"}, body
    if code is not None:
        assert err["code"] == code, body
    assert err["request_id"], body
    return err


def multi(routes: list[dict], origins: dict, *, apis_extra: dict | None = None, server=None) -> dict:
    """One API with `routes`, each naming its origin by `service` (= origin name)."""
    cfg = {
        "services": [{"name": name, "targets": [{"url": o.url}]} for name, o in origins.items()],
        "apis": [{"name": "api", **(apis_extra or {}), "routes": routes}],
    }
    if server:
        cfg["server"] = server
    return cfg


def served_by(resp) -> str:
    assert resp.status_code == 200, resp.text
    return resp.headers["x-origin-name"]


# --------------------------------------------------------------------------- prefix basics


def test_minimal_prefix_route_matches_path_and_below_but_not_sibling_names(gateway_factory, origin):
    # The minimal configuration from issue 2, as YAML text.
    gw = gateway_factory(
        f"""
services:
  - name: echo
    targets:
      - url: {origin.url}
apis:
  - name: demo
    routes:
      - name: echo
        paths: ["/echo"]
        service: echo
"""
    )
    with client(gw) as c:
        assert c.get("/echo").status_code == 200
        assert c.get("/echo/a/b?q=1").status_code == 200
        assert c.get("/echo/").status_code == 200
        r = c.get("/echoes")
        assert_error(r, 404, "route_not_found")
        assert_error(c.get("/"), 404, "route_not_found")
    # The upstream received the paths unchanged; /echoes and / never reached it.
    assert [(r.path, r.query) for r in origin.requests] == [("/echo", ""), ("/echo/a/b", "q=1"), ("/echo/", "")]


def test_unmatched_request_is_404_json_with_request_id_header(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/only"]))
    with client(gw) as c:
        r = c.get("/elsewhere")
    err = assert_error(r, 404, "route_not_found")
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-request-id"] == err["request_id"]
    assert origin.requests == []


# --------------------------------------------------------------------------- hosts


def test_hosts_exact_beats_wildcard_beats_any_host_case_and_port_insensitive(gateway_factory, origin_factory):
    o = {n: origin_factory(n) for n in ("exact", "wild", "any")}
    cfg = {
        "services": [{"name": n, "targets": [{"url": x.url}]} for n, x in o.items()],
        "apis": [
            {"name": "exact", "hosts": ["api.example.com"], "routes": [{"name": "r", "paths": ["/"], "service": "exact"}]},
            {"name": "wild", "hosts": ["*.example.com"], "routes": [{"name": "r", "paths": ["/"], "service": "wild"}]},
            {"name": "any", "routes": [{"name": "r", "paths": ["/"], "service": "any"}]},
        ],
    }
    gw = gateway_factory(cfg)
    cases = {
        "api.example.com": "exact",
        "API.Example.COM:8080": "exact",
        "x.example.com": "wild",
        "deep.x.example.com": "wild",
        "example.com": "any",  # a wildcard never matches the apex
        "other.test": "any",
    }
    with client(gw) as c:
        for host, want in cases.items():
            assert served_by(c.get("/h", headers={"host": host})) == want, host


def test_route_hosts_narrow_the_api_and_unknown_host_is_404(gateway_factory, origin_factory):
    a, b = origin_factory("a"), origin_factory("b")
    cfg = {
        "services": [{"name": "a", "targets": [{"url": a.url}]}, {"name": "b", "targets": [{"url": b.url}]}],
        "apis": [{
            "name": "api",
            "hosts": ["a.test", "b.test"],
            "routes": [
                {"name": "ra", "paths": ["/"], "hosts": ["a.test"], "service": "a"},
                {"name": "rb", "paths": ["/"], "hosts": ["b.test"], "service": "b"},
            ],
        }],
    }
    gw = gateway_factory(cfg)
    with client(gw) as c:
        assert served_by(c.get("/", headers={"host": "a.test"})) == "a"
        assert served_by(c.get("/", headers={"host": "b.test"})) == "b"
        assert_error(c.get("/", headers={"host": "c.test"}), 404, "route_not_found")


# --------------------------------------------------------------------------- methods, headers, query


def test_methods_select_routes_and_other_methods_are_not_routed(gateway_factory, origin_factory):
    o = {"read": origin_factory("read"), "write": origin_factory("write")}
    gw = gateway_factory(multi([
        {"name": "read", "paths": ["/items"], "methods": ["GET", "HEAD"], "service": "read"},
        {"name": "write", "paths": ["/items"], "methods": ["post", "PUT"], "service": "write"},
    ], o))
    with client(gw) as c:
        assert served_by(c.get("/items/1")) == "read"
        assert c.head("/items/1").headers["x-origin-name"] == "read"
        assert served_by(c.post("/items", content=b"x")) == "write"
        assert served_by(c.put("/items/1", content=b"x")) == "write"
        assert_error(c.delete("/items/1"), 404, "route_not_found")
    assert [r.method for r in o["read"].requests] == ["GET", "HEAD"]
    assert [r.method for r in o["write"].requests] == ["POST", "PUT"]


def test_header_matchers_value_regex_present_absent(gateway_factory, origin_factory):
    names = ["value", "regex", "present", "absent", "default"]
    o = {n: origin_factory(n) for n in names}
    gw = gateway_factory(multi([
        {"name": "value", "paths": ["/h"], "headers": [{"name": "X-Version", "value": "2"}], "service": "value"},
        {"name": "regex", "paths": ["/h"], "headers": [{"name": "x-tenant", "regex": "t-[0-9]+"}], "service": "regex"},
        {"name": "present", "paths": ["/h"], "headers": [{"name": "x-debug", "present": True}], "service": "present"},
        {"name": "absent", "paths": ["/h"], "headers": [{"name": "x-user", "present": False}], "service": "absent"},
        {"name": "default", "paths": ["/h"], "methods": ["GET"], "service": "default"},
    ], o))
    with client(gw) as c:
        u = {"x-user": "u"}  # defeats the "absent" route
        assert served_by(c.get("/h", headers={"x-version": "2", **u})) == "value"
        assert served_by(c.get("/h", headers={"x-version": "22", **u})) == "default"
        assert served_by(c.get("/h", headers={"x-tenant": "t-42", **u})) == "regex"
        # The regex must match the whole value.
        assert served_by(c.get("/h", headers={"x-tenant": "t-42x", **u})) == "default"
        assert served_by(c.get("/h", headers={"x-debug": "", **u})) == "present"
        assert served_by(c.get("/h")) == "absent"
        assert served_by(c.get("/h", headers=u)) == "default"


def test_query_matchers_compare_decoded_values(gateway_factory, origin_factory):
    o = {n: origin_factory(n) for n in ("beta", "regex", "default")}
    gw = gateway_factory(multi([
        {"name": "beta", "paths": ["/q"], "query": [{"name": "beta", "value": "on"}], "service": "beta"},
        {"name": "regex", "paths": ["/q"], "query": [{"name": "id", "regex": "[0-9]{3}"}], "service": "regex"},
        {"name": "default", "paths": ["/q"], "methods": ["GET"], "service": "default"},
    ], o))
    with client(gw) as c:
        assert served_by(c.get("/q?beta=on")) == "beta"
        assert served_by(c.get("/q?x=1&beta=%6Fn")) == "beta"  # percent-decoded before comparing
        assert served_by(c.get("/q?beta=off")) == "default"
        assert served_by(c.get("/q?id=123")) == "regex"
        assert served_by(c.get("/q?id=1234")) == "default"
        assert served_by(c.get("/q")) == "default"
    # The query string is forwarded as sent.
    assert o["beta"].requests[1].query == "x=1&beta=%6Fn"


# --------------------------------------------------------------------------- pattern kinds


def test_template_param_matches_one_segment_and_feeds_rewrite(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/users/{id}"], route={"rewrite": {"template": "/internal/users/{id}"}}))
    with client(gw) as c:
        assert c.get("/users/42?full=1").status_code == 200
        assert_error(c.get("/users/42/extra"), 404)
        assert_error(c.get("/users/"), 404)
    assert [(r.path, r.query) for r in origin.requests] == [("/internal/users/42", "full=1")]


def test_catch_all_captures_the_rest_including_empty(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/files/{*rest}"], route={"rewrite": {"template": "/store/{rest}"}}))
    with client(gw) as c:
        assert c.get("/files/a/b/c.txt").status_code == 200
        assert c.get("/files/").status_code == 200
        assert_error(c.get("/filesystem"), 404)
    assert origin.paths() == ["/store/a/b/c.txt", "/store/"]


def test_regex_route_and_named_captures(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["~ ^/v[0-9]+/(?P<name>[a-z]+)$"], route={"rewrite": {"template": "/named/{name}"}}))
    with client(gw) as c:
        assert c.get("/v12/items").status_code == 200
        assert_error(c.get("/vx/items"), 404)
        assert_error(c.get("/v1/items/more"), 404)
    assert origin.paths() == ["/named/items"]


def test_exact_pattern_matches_only_that_path(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["= /exact"]))
    with client(gw) as c:
        assert c.get("/exact").status_code == 200
        assert_error(c.get("/exact/x"), 404)
        assert_error(c.get("/exactly"), 404)
    assert origin.paths() == ["/exact"]


# --------------------------------------------------------------------------- priority


def test_priority_exact_then_template_then_longest_prefix(gateway_factory, origin_factory):
    names = ["short", "long", "template", "exact"]
    o = {n: origin_factory(n) for n in names}
    gw = gateway_factory(multi([
        # Declared in the "wrong" order on purpose: priority must not depend on it.
        {"name": "short", "paths": ["/a"], "service": "short"},
        {"name": "long", "paths": ["/a/b"], "service": "long"},
        {"name": "template", "paths": ["/a/b/{id}"], "service": "template"},
        {"name": "exact", "paths": ["= /a/b/fixed"], "service": "exact"},
    ], o))
    with client(gw) as c:
        assert served_by(c.get("/a")) == "short"
        assert served_by(c.get("/a/c")) == "short"
        assert served_by(c.get("/a/b")) == "long"
        assert served_by(c.get("/a/bc")) == "short"  # prefixes are segment-bounded
        assert served_by(c.get("/a/b/7")) == "template"
        assert served_by(c.get("/a/b/7/8")) == "long"
        assert served_by(c.get("/a/b/fixed")) == "exact"


def test_regex_priority_and_regex_beats_prefix(gateway_factory, origin_factory):
    o = {n: origin_factory(n) for n in ("prefix", "low", "high")}
    gw = gateway_factory(multi([
        {"name": "prefix", "paths": ["/r"], "service": "prefix"},
        {"name": "low", "paths": ["~ ^/r/[0-9]+$"], "service": "low"},
        {"name": "high", "paths": ["~ ^/r/4[0-9]$"], "priority": 10, "service": "high"},
    ], o))
    with client(gw) as c:
        assert served_by(c.get("/r/42")) == "high"
        assert served_by(c.get("/r/7")) == "low"
        assert served_by(c.get("/r/x")) == "prefix"


def test_identical_routes_are_a_config_error_naming_both(tollgate_bin, tmp_path, origin):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text(f"""
services:
  - name: s
    targets: [{{url: "{origin.url}"}}]
apis:
  - name: one
    routes:
      - name: first
        paths: ["/dup"]
        service: s
  - name: two
    routes:
      - name: second
        paths: ["/dup/"]
        methods: [GET]
        service: s
""")
    r = subprocess.run([tollgate_bin, "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    assert "apis[0].routes[0]" in r.stderr and "apis[1].routes[0]" in r.stderr, r.stderr
    assert "conflict" in r.stderr
    # `run` refuses it as well, with the same exit code.
    r = subprocess.run([tollgate_bin, "run", "-c", str(cfg), "--no-watch"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r


def test_same_path_with_disjoint_methods_is_valid(tollgate_bin, tmp_path, origin):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(f"""
services:
  - name: s
    targets: [{{url: "{origin.url}"}}]
apis:
  - name: one
    routes:
      - {{name: get, paths: ["/dup"], methods: [GET], service: s}}
      - {{name: post, paths: ["/dup"], methods: [POST], service: s}}
""")
    r = subprocess.run([tollgate_bin, "validate", "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- rewrites, host header, base path


def test_strip_prefix_removes_matched_prefix(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/api"], route={"rewrite": {"strip_prefix": True}}))
    with client(gw) as c:
        assert c.get("/api/users/1?x=1").status_code == 200
        assert c.get("/api").status_code == 200
    assert [(r.path, r.query) for r in origin.requests] == [("/users/1", "x=1"), ("/", "")]


def test_replace_prefix_swaps_matched_prefix(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/old"], route={"rewrite": {"replace_prefix": "/new/v2"}}))
    with client(gw) as c:
        assert c.get("/old/x/y").status_code == 200
        assert c.get("/old/").status_code == 200
        assert c.get("/old").status_code == 200
    # The prefix is replaced as written: a trailing slash is kept, none is added.
    assert origin.paths() == ["/new/v2/x/y", "/new/v2/", "/new/v2"]


def test_target_url_base_path_is_prefixed(gateway_factory, origin):
    gw = gateway_factory(one_route(origin.url + "/base", ["/p"]))
    with client(gw) as c:
        assert c.get("/p/x").status_code == 200
    assert origin.paths() == ["/base/p/x"]


def test_host_header_pass_sends_client_host(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/"], route={"host_header": "pass"}))
    with client(gw) as c:
        c.get("/x", headers={"host": "client.example:9999"})
    assert origin.last().header("host") == "client.example:9999"


def test_host_header_upstream_sends_target_authority(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/"], route={"host_header": "upstream"}))
    with client(gw) as c:
        c.get("/x", headers={"host": "client.example"})
    rec = origin.last()
    assert rec.header("host") == f"127.0.0.1:{origin.port}"
    assert rec.header("x-forwarded-host") == "client.example"


def test_api_base_path_prefixes_routes_and_is_forwarded(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/users/{id}", "/health"], api={"base_path": "/v1"}))
    with client(gw) as c:
        assert c.get("/v1/users/7").status_code == 200
        assert c.get("/v1/health/deep").status_code == 200
        assert_error(c.get("/users/7"), 404)
        assert_error(c.get("/v1x/users/7"), 404)
    assert origin.paths() == ["/v1/users/7", "/v1/health/deep"]


def test_strip_prefix_with_base_path_strips_both(gateway_factory, origin):
    gw = gateway_factory(one_route(origin, ["/svc"], api={"base_path": "/v1"}, route={"rewrite": {"strip_prefix": True}}))
    with client(gw) as c:
        assert c.get("/v1/svc/x").status_code == 200
    assert origin.paths() == ["/x"]


# --------------------------------------------------------------------------- path normalization


@pytest.fixture
def catch_all(gateway_factory, origin):
    """A gateway forwarding every path to `origin` (and one forwarding only /echo)."""

    def make(server=None, paths=("/",)):
        return gateway_factory(one_route(origin, list(paths), server=server))

    return make


@pytest.mark.parametrize(
    "sent, received",
    [
        ("/echo/../admin", "/admin"),
        ("/echo/%2e%2e/admin", "/admin"),
        ("/echo/%2E%2e/admin", "/admin"),
        ("/echo/.%2e/admin", "/admin"),
        ("/echo/./a/./b", "/echo/a/b"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("//echo///a//b", "/echo/a/b"),
        ("/echo/%41%62%7e%2D", "/echo/Ab~-"),
        ("/echo/%e2%82%ac", "/echo/%E2%82%AC"),
        ("/echo/%252e%252e/x", "/echo/%252e%252e/x"),
        ("/echo/a%2fb", "/echo/a%2Fb"),
    ],
)
def test_normalized_path_is_what_the_upstream_receives(catch_all, origin, sent, received):
    gw = catch_all()
    r = raw_get(gw, sent)
    assert r.status == 200, r.body
    assert origin.last().path == received
    assert ".." not in origin.last().path.split("/")


def test_dot_segments_cannot_escape_a_prefix_route(catch_all, origin):
    gw = catch_all(paths=["/echo"])
    for target in ("/echo/../admin", "/echo/%2e%2e/admin", "/echo/..%2fadmin", "/echo/%2E%2E%2Fadmin"):
        r = raw_get(gw, target)
        if r.status == 200:
            # Only acceptable if the request stayed under /echo (the %2F variants keep the
            # escaped slash, so "..%2Fadmin" is a segment name, not a dot segment).
            assert origin.last().path.startswith("/echo/"), (target, origin.last().path)
            assert "/../" not in origin.last().path + "/"
        else:
            assert r.status == 404, (target, r.status)
    assert all(not r.path.startswith("/admin") for r in origin.requests)


def test_escaped_slash_reject_answers_400_json(catch_all, origin):
    gw = catch_all(server={"path_normalization": {"escaped_slashes": "reject"}})
    r = raw_get(gw, "/echo/a%2Fb")
    assert r.status == 400
    body = r.json()
    assert body["error"]["code"] == "invalid_path"
    assert body["error"]["request_id"]
    r = raw_get(gw, "/echo/a%5cb")
    assert r.status == 400
    assert origin.requests == []


def test_escaped_slash_unescape_decodes_and_renormalizes(catch_all, origin):
    gw = catch_all(server={"path_normalization": {"escaped_slashes": "unescape"}})
    assert raw_get(gw, "/echo/a%2Fb").status == 200
    assert raw_get(gw, "/echo/x%2F..%2Fy").status == 200
    assert origin.paths() == ["/echo/a/b", "/echo/y"]


def test_merge_slashes_can_be_disabled(catch_all, origin):
    gw = catch_all(server={"path_normalization": {"merge_slashes": False}})
    assert raw_get(gw, "/echo//a").status == 200
    assert origin.last().path == "/echo//a"


@pytest.mark.parametrize("target", ["/echo/%00x", "/echo/%zz", "/echo/%4"])
def test_malformed_or_nul_escapes_are_400(catch_all, origin, target):
    gw = catch_all()
    r = raw_get(gw, target)
    assert r.status == 400
    assert r.json()["error"]["code"] == "invalid_path"
    assert origin.requests == []
