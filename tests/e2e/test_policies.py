"""Built-in policies end to end: header edits at every scope, `mock`, `cors`,
`request-size-limit`, and policy configuration errors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from support.rawhttp import RawConnection


def echo_headers(r: httpx.Response) -> dict[str, list[str]]:
    """The request headers the origin received, from its echo body."""
    out: dict[str, list[str]] = {}
    for name, value in r.json()["headers"]:
        out.setdefault(name, []).append(value)
    return out


# ------------------------------------------------------------------------------------ headers


def headers_config(origin) -> dict:
    return {
        "services": [{"name": "origin", "targets": [{"url": origin.url}]}],
        "policies": [
            {"name": "request-headers", "config": {"set": {"x-scope": "global"}, "add": {"x-global": "g"}}},
            {"name": "response-headers", "config": {"set": {"x-resp-scope": "global"}, "remove": ["x-origin-name"]}},
        ],
        "apis": [
            {
                "name": "plain",
                "routes": [{"name": "plain", "paths": ["/plain"], "service": "origin"}],
            },
            {
                "name": "scoped",
                "base_path": "/api",
                "policies": [
                    {"name": "request-headers", "config": {
                        "remove": ["x-remove-me"],
                        "set": {"x-scope": "api", "X-Set-Me": "gw"},
                        "add": {"x-added": ["a", "b"]},
                    }},
                    {"name": "response-headers", "config": {
                        "set": {"x-resp-scope": "api", "cache-control": "no-store"},
                        "add": {"x-resp-added": ["r1", "r2"]},
                    }},
                ],
                "routes": [
                    {"name": "api-default", "paths": ["/default"], "service": "origin"},
                    {"name": "route-override", "paths": ["/route"], "service": "origin", "policies": [
                        {"name": "request-headers", "config": {"set": {"x-scope": "route"}}},
                        {"name": "response-headers", "config": {"set": {"x-resp-scope": "route"}}},
                    ]},
                    {"name": "route-disabled", "paths": ["/disabled"], "service": "origin", "policies": [
                        {"name": "request-headers", "enabled": False, "config": {"set": {"x-scope": "never"}}},
                    ]},
                ],
            },
        ],
    }


CLIENT_HEADERS = {"x-remove-me": "1", "x-set-me": "client", "x-added": "c0", "x-scope": "client"}


def test_global_header_policies_apply_to_routes_without_their_own(gateway_factory, origin):
    gw = gateway_factory(headers_config(origin))
    r = httpx.get(gw.proxy_url + "/plain/x", headers=CLIENT_HEADERS, timeout=5)
    assert r.status_code == 200
    up = echo_headers(r)
    assert up["x-scope"] == ["global"]  # set replaces the client's value
    assert up["x-global"] == ["g"]
    assert up["x-remove-me"] == ["1"]
    assert r.headers["x-resp-scope"] == "global"
    assert "x-origin-name" not in r.headers  # removed from the upstream response


def test_api_scope_header_policies_add_set_remove_and_override_global(gateway_factory, origin):
    gw = gateway_factory(headers_config(origin))
    r = httpx.get(gw.proxy_url + "/api/default", headers=CLIENT_HEADERS, timeout=5)
    assert r.status_code == 200
    up = echo_headers(r)
    assert "x-remove-me" not in up
    assert up["x-set-me"] == ["gw"]
    assert up["x-added"] == ["c0", "a", "b"]  # appended after the client's value
    assert up["x-scope"] == ["api"]
    assert "x-global" not in up  # the API's request-headers replaces the global one entirely
    assert r.headers["x-resp-scope"] == "api"
    assert r.headers.get_list("x-resp-added") == ["r1", "r2"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-origin-name"] == "origin"  # the global response-headers (remove) is overridden


def test_route_scope_header_policies_override_api_scope(gateway_factory, origin):
    gw = gateway_factory(headers_config(origin))
    r = httpx.get(gw.proxy_url + "/api/route", headers=CLIENT_HEADERS, timeout=5)
    up = echo_headers(r)
    assert up["x-scope"] == ["route"]
    assert up["x-set-me"] == ["client"]  # the API's edits are not applied on top
    assert up["x-remove-me"] == ["1"]
    assert up["x-added"] == ["c0"]
    assert r.headers["x-resp-scope"] == "route"
    assert "x-resp-added" not in r.headers


def test_disabled_policy_does_not_run(gateway_factory, origin):
    gw = gateway_factory(headers_config(origin))
    r = httpx.get(gw.proxy_url + "/api/disabled", headers=CLIENT_HEADERS, timeout=5)
    up = echo_headers(r)
    assert "never" not in up["x-scope"]
    assert r.headers["x-resp-scope"] == "api"


def test_response_headers_apply_to_gateway_errors_too(gateway_factory, origin):
    gw = gateway_factory(headers_config(origin))
    r = httpx.get(gw.proxy_url + "/no/route/here", timeout=5)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "route_not_found"
    assert r.headers["x-resp-scope"] == "global"


# ------------------------------------------------------------------------------------ mock


def mock_config(origin) -> dict:
    return {
        "services": [{"name": "origin", "targets": [{"url": origin.url}]}],
        "policies": [{"name": "response-headers", "config": {"set": {"x-resp-scope": "global"}}}],
        "apis": [{
            "name": "mocks",
            "routes": [
                {"name": "mock-json", "paths": ["= /mock/json"], "service": "origin", "policies": [
                    {"name": "mock", "config": {
                        "status": 201,
                        "headers": {"x-mock": "yes", "x-multi": ["m1", "m2"]},
                        "json": {"users": [], "ok": True},
                    }}]},
                {"name": "mock-text", "paths": ["= /mock/text"], "service": "origin", "policies": [
                    {"name": "mock", "config": {"body": "plain text\n"}}]},
                {"name": "mock-empty", "paths": ["= /mock/empty"], "service": "origin", "policies": [
                    {"name": "mock", "config": {"status": 204}}]},
                {"name": "real", "paths": ["/echo"], "service": "origin"},
            ],
        }],
    }


def test_mock_policy_answers_without_calling_the_upstream(gateway_factory, origin):
    gw = gateway_factory(mock_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        r = c.post("/mock/json", content=b"ignored")
        assert r.status_code == 201
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"users": [], "ok": True}
        assert r.headers["x-mock"] == "yes"
        assert r.headers.get_list("x-multi") == ["m1", "m2"]
        assert r.headers["x-resp-scope"] == "global"  # the response phase still runs
        assert r.headers.get("x-request-id")

        t = c.get("/mock/text")
        assert (t.status_code, t.text) == (200, "plain text\n")
        assert t.headers["content-type"] == "text/plain; charset=utf-8"

        e = c.get("/mock/empty")
        assert e.status_code == 204 and e.content == b""

        assert origin.requests == []
        assert c.get("/echo/real").status_code == 200
        assert origin.paths() == ["/echo/real"]


# ------------------------------------------------------------------------------------ cors

APP = "https://app.example.com"
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def cors_config(origin) -> dict:
    def api(name: str, base: str, cors: dict, methods=("GET",)) -> dict:
        return {
            "name": name,
            "base_path": base,
            "policies": [{"name": "cors", "config": cors}],
            "routes": [{"name": f"{name}-items", "paths": ["/items"], "methods": list(methods), "service": "origin"}],
        } if methods else {
            "name": name,
            "base_path": base,
            "policies": [{"name": "cors", "config": cors}],
            "routes": [{"name": f"{name}-items", "paths": ["/items"], "service": "origin"}],
        }

    return {
        "services": [{"name": "origin", "targets": [{"url": origin.url}]}],
        "apis": [
            api("basic", "/cors", {
                "allow_origins": [APP, "https://*.example.org"],
                "expose_headers": ["x-request-id"],
                "max_age": "10m",
            }),
            api("cred", "/cred", {
                "allow_origins": [APP],
                "allow_credentials": True,
                "allow_methods": ["GET", "POST"],
                "allow_headers": ["x-custom", "content-type"],
            }, methods=()),  # any method: the policy, not routing, decides
            api("any", "/any", {"allow_origins": ["*"]}),
        ],
    }


def preflight(c: httpx.Client, path: str, origin: str, method: str = "GET", headers: str | None = None):
    h = {"origin": origin, "access-control-request-method": method}
    if headers:
        h["access-control-request-headers"] = headers
    return c.options(path, headers=h)


def test_cors_preflight_answers_204_with_every_header_even_on_a_get_only_route(gateway_factory, origin):
    gw = gateway_factory(cors_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        r = preflight(c, "/cors/items", APP, "GET", "X-Custom, Content-Type")
        assert r.status_code == 204, r.text
        assert r.headers["access-control-allow-origin"] == APP
        assert r.headers["access-control-allow-methods"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        assert r.headers["access-control-allow-headers"] == "x-custom, content-type"
        assert r.headers["access-control-max-age"] == "600"
        assert r.headers["vary"] == PREFLIGHT_VARY
        assert "access-control-allow-credentials" not in r.headers
        assert r.content == b""

        sub = preflight(c, "/cors/items", "https://a.b.example.org")
        assert sub.status_code == 204
        assert sub.headers["access-control-allow-origin"] == "https://a.b.example.org"
        assert "access-control-allow-headers" not in sub.headers  # none requested
    assert origin.requests == []  # preflights never reach the upstream


def test_cors_preflight_from_disallowed_origin_is_403_without_cors_headers(gateway_factory, origin):
    gw = gateway_factory(cors_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        for bad in ("https://evil.example.com", "https://example.org", "http://app.example.com"):
            r = preflight(c, "/cors/items", bad)
            assert r.status_code == 403, bad
            assert r.json()["error"]["code"] == "cors_rejected"
            assert not any(h.startswith("access-control-") for h in r.headers), dict(r.headers)
        # method / header not in the lists
        r = preflight(c, "/cred/items", APP, "DELETE")
        assert r.status_code == 403 and "DELETE" in r.json()["error"]["message"]
        r = preflight(c, "/cred/items", APP, "POST", "x-other")
        assert r.status_code == 403 and "x-other" in r.json()["error"]["message"]
    assert origin.requests == []


def test_cors_actual_request_gets_allow_origin_expose_and_vary(gateway_factory, origin):
    gw = gateway_factory(cors_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        r = c.get("/cors/items/1", headers={"origin": APP})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP
        assert r.headers["access-control-expose-headers"] == "x-request-id"
        assert "Origin" in [v.strip() for v in r.headers["vary"].split(",")]
        assert "access-control-allow-credentials" not in r.headers

        denied = c.get("/cors/items/2", headers={"origin": "https://evil.example.com"})
        assert denied.status_code == 200  # passed through; the browser hides it
        assert "access-control-allow-origin" not in denied.headers
        assert "Origin" in denied.headers.get("vary", "")

        no_origin = c.get("/cors/items/3")
        assert "access-control-allow-origin" not in no_origin.headers
        assert "Origin" in no_origin.headers.get("vary", "")  # caches must keep variants apart
    assert len(origin.requests) == 3


def test_cors_credentials_reflect_the_origin_and_never_use_a_wildcard(gateway_factory, origin):
    gw = gateway_factory(cors_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        r = preflight(c, "/cred/items", APP, "POST", "content-type")
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == APP
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == "GET, POST"
        assert r.headers["access-control-allow-headers"] == "x-custom, content-type"

        actual = c.post("/cred/items", headers={"origin": APP}, content=b"{}")
        assert actual.status_code == 200
        assert actual.headers["access-control-allow-origin"] == APP
        assert actual.headers["access-control-allow-credentials"] == "true"

        star = c.get("/any/items", headers={"origin": "https://whoever.test"})
        assert star.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in star.headers
        star_pre = preflight(c, "/any/items", "https://whoever.test")
        assert star_pre.status_code == 204
        assert star_pre.headers["access-control-allow-origin"] == "*"


def test_cors_route_limited_to_get_still_refuses_other_methods(gateway_factory, origin):
    gw = gateway_factory(cors_config(origin))
    r = httpx.post(gw.proxy_url + "/cors/items", headers={"origin": APP}, timeout=5)
    assert r.status_code == 404
    assert origin.requests == []


# ------------------------------------------------------------------------------------ size limit


def limit_config(origin) -> dict:
    return {
        "services": [{"name": "origin", "targets": [{"url": origin.url}]}],
        "apis": [{
            "name": "limited",
            "policies": [{"name": "request-size-limit", "config": {"max_bytes": "1KiB"}}],
            "routes": [{"name": "upload", "paths": ["/limited"], "service": "origin"}],
        }],
    }


def gen(total: int, size: int = 300):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"x" * n
        sent += n


def assert_413_json(r: httpx.Response) -> None:
    assert r.status_code == 413, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["code"] == "payload_too_large"
    assert "1024" in err["message"]
    assert err["request_id"] == r.headers["x-request-id"]


def test_request_size_limit_content_length_over_limit_is_413_json_before_upstream(gateway_factory, origin):
    gw = gateway_factory(limit_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        ok = c.post("/limited/a", content=b"x" * 1024)
        assert ok.status_code == 200 and ok.json()["body_len"] == 1024
        assert_413_json(c.post("/limited/b", content=b"x" * 1025))
    assert origin.paths() == ["/limited/a"]


def test_request_size_limit_chunked_body_over_limit_is_413_json(gateway_factory, origin):
    gw = gateway_factory(limit_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        ok = c.post("/limited/small", content=gen(1000))
        assert ok.status_code == 200 and ok.json()["body_len"] == 1000
        assert_413_json(c.post("/limited/big", content=gen(5000)))
    # whatever reached the origin, it never received a complete oversize body
    assert all(r.body_len in (None, 1000) or r.body_len <= 1024 for r in origin.requests)


def test_request_size_limit_refuses_expect_100_continue_before_the_body_is_sent(gateway_factory, origin):
    gw = gateway_factory(limit_config(origin))
    with RawConnection("127.0.0.1", gw.proxy_port, timeout=5) as conn:
        conn.send(b"POST /limited/e HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        r = conn.read_response(skip_informational=False)
    assert r.status == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert origin.requests == []


# ------------------------------------------------------------------------------------ config errors


def validate(bin_path: str, tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return subprocess.run([bin_path, "validate", "-c", str(p)], capture_output=True, text=True, timeout=20)


POLICY_BASE = """\
services:
  - name: m
    mock:
      body: "x"
apis:
  - name: a
    policies:
      - name: {name}
        config:
          {config}
    routes:
      - name: r
        paths: ["/x"]
        service: m
"""


def loc(text: str, needle: str) -> str:
    pos = text.index(needle)
    return f"{text.count(chr(10), 0, pos) + 1}:{pos - (text.rfind(chr(10), 0, pos) + 1) + 1}"


@pytest.mark.parametrize(
    "name,config,needle,path,fragment",
    [
        ("request-size-limit", "max_bytes: 12 parsecs", "max_bytes:", "apis[0].policies[0].config.max_bytes", "unknown unit"),
        ("request-size-limit", "max_bytes: -5", "max_bytes:", "apis[0].policies[0].config.max_bytes", ""),
        ("request-size-limit", "max_byte: 10", "max_byte:", "apis[0].policies[0].config", "unknown field `max_byte`"),
        ("cors", "allow_origins: ['*']\n          allow_credentials: true", "'*'",
         "apis[0].policies[0].config.allow_origins[0]", "allow_credentials"),
        ("cors", "allow_origins: ['https://a.test/path']", "'https://a.test/path'",
         "apis[0].policies[0].config.allow_origins[0]", ""),
        ("response-headers", "set: {transfer-encoding: chunked}", "transfer-encoding",
         "apis[0].policies[0].config.set.transfer-encoding", "hop-by-hop"),
        ("mock", "status: 204\n          body: no", "body: no", "apis[0].policies[0].config.body", "no body"),
    ],
    ids=["size-unit", "size-negative", "size-unknown-field", "cors-star-credentials", "cors-origin-path",
         "response-headers-framing", "mock-204-body"],
)
def test_invalid_policy_config_is_a_load_error_naming_the_field(tollgate_bin, tmp_path, name, config, needle, path, fragment):
    text = POLICY_BASE.format(name=name, config=config)
    r = validate(tollgate_bin, tmp_path, text)
    assert r.returncode == 2, r.stderr
    where = loc(text, needle)
    assert re.search(rf"policy\.yaml:{where}: {re.escape(path)}(\.\S+)?: .*{re.escape(fragment)}", r.stderr), \
        f"want policy.yaml:{where}: {path}: ...{fragment} in\n{r.stderr}"


def test_unknown_policy_name_is_a_load_error_listing_known_policies(tollgate_bin, tmp_path):
    text = POLICY_BASE.format(name="rate-limiter", config="{}")
    r = validate(tollgate_bin, tmp_path, text)
    assert r.returncode == 2
    where = loc(text, "name: rate-limiter")
    assert f"policy.yaml:{where}: apis[0].policies[0].name: unknown policy \"rate-limiter\"" in r.stderr, r.stderr
    for known in ("cors", "request-size-limit", "request-headers", "response-headers", "mock"):
        assert known in r.stderr


def test_same_policy_twice_at_one_scope_is_a_load_error(tollgate_bin, tmp_path):
    text = POLICY_BASE.format(name="mock", config="{}").replace(
        "    routes:", "      - name: mock\n    routes:")
    r = validate(tollgate_bin, tmp_path, text)
    assert r.returncode == 2
    assert "apis[0].policies[1].name" in r.stderr and "twice" in r.stderr, r.stderr


def test_invalid_policy_config_prevents_start(gateway_factory):
    text = POLICY_BASE.format(name="request-size-limit", config="max_bytes: lots")
    from support.gateway import GatewayError  # the fixture raises it when the process exits early
    with pytest.raises(GatewayError) as e:
        gateway_factory(text)
    assert "apis[0].policies[0].config.max_bytes" in str(e.value)


# ------------------------------------------------------------------------------------ interplay


def test_cors_is_authoritative_over_upstream_cors_headers_and_merges_vary(gateway_factory, origin_factory):
    def handler(rec):
        return 200, [("access-control-allow-origin", "*"), ("access-control-allow-credentials", "true"),
                     ("access-control-expose-headers", "x-secret"), ("vary", "Accept-Encoding"),
                     ("content-type", "text/plain")], b"from upstream"

    up = origin_factory("cors-upstream", handler=handler)
    gw = gateway_factory(cors_config(up))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        ok = c.get("/cors/items", headers={"origin": APP})
        assert ok.headers["access-control-allow-origin"] == APP
        assert "access-control-allow-credentials" not in ok.headers
        assert ok.headers["access-control-expose-headers"] == "x-request-id"
        assert [v.strip() for v in ok.headers["vary"].split(",")] == ["Accept-Encoding", "Origin"]

        bad = c.get("/cors/items", headers={"origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in bad.headers
        assert "access-control-allow-credentials" not in bad.headers
        assert "access-control-expose-headers" not in bad.headers


def test_cors_headers_are_on_policy_errors_so_browsers_can_read_them(gateway_factory, origin):
    cfg = limit_config(origin)
    cfg["apis"][0]["policies"].append({"name": "cors", "config": {"allow_origins": [APP]}})
    gw = gateway_factory(cfg)
    r = httpx.post(gw.proxy_url + "/limited/x", content=b"x" * 2000, headers={"origin": APP}, timeout=5)
    assert r.status_code == 413
    assert r.headers["access-control-allow-origin"] == APP
    # and the preflight for it is answered before the size check
    p = httpx.options(gw.proxy_url + "/limited/x", timeout=5,
                      headers={"origin": APP, "access-control-request-method": "POST"})
    assert p.status_code == 204


def test_route_size_limit_overrides_the_api_one(gateway_factory, origin):
    cfg = limit_config(origin)
    cfg["apis"][0]["routes"].insert(0, {
        "name": "big", "paths": ["/limited/big"], "service": "origin",
        "policies": [{"name": "request-size-limit", "config": {"max_bytes": "10KiB"}}],
    })
    gw = gateway_factory(cfg)
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        assert c.post("/limited/big/x", content=b"x" * 5000).status_code == 200
        assert c.post("/limited/big/x", content=gen(5000)).status_code == 200
        assert c.post("/limited/big/x", content=b"x" * 10241).status_code == 413
        assert c.post("/limited/other", content=b"x" * 5000).status_code == 413


def test_request_headers_can_rewrite_host_sent_upstream(gateway_factory, origin):
    gw = gateway_factory({
        "services": [{"name": "origin", "targets": [{"url": origin.url}]}],
        "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["/"], "service": "origin", "policies": [
            {"name": "request-headers", "config": {"set": {"host": "users.internal"}}}]}]}],
    })
    r = httpx.get(gw.proxy_url + "/h", timeout=5)
    assert r.status_code == 200
    assert origin.last().header("host") == "users.internal"
