"""Environments in file mode: which environment serves a request (environment header, bound
host, the hostless environment, none), per-environment variables reaching different origins,
API versions published to different environments, drafts, deprecation headers, and the
validation errors `tollgate validate` reports for them.

Every test runs the real binary against real origins and asserts on what the origins received
on the wire."""

from __future__ import annotations

import re
import subprocess
import time

import httpx
import pytest

PROD_HOST = "api.example.test"
TEST_HOST = "api.test.example.test"


def get(gw, path: str, host: str, headers: dict | None = None) -> httpx.Response:
    return httpx.get(gw.proxy_url + path, headers={"host": host, **(headers or {})}, timeout=5)


def served_by(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return resp.headers["x-origin-name"]


def assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code, err
    assert err["request_id"] == resp.headers["x-request-id"]


def two_environments(prod_origin, test_origin, *, prod_hosts=(PROD_HOST,), apis=None, **extra) -> dict:
    """`prod` and `test` with bound hosts, one variable-backed service, one API live in both."""
    cfg = {
        "environments": [
            {"name": "prod", "hosts": list(prod_hosts), "variables": {"backend": prod_origin.url}},
            {"name": "test", "hosts": [TEST_HOST, "*.test.example.test"], "header_selection": True,
             "variables": {"backend": test_origin.url}},
        ],
        "services": [{"name": "users", "targets": [{"url": "${vars.backend}"}]}],
        "apis": apis or [{"name": "users", "routes": [{"name": "all", "paths": ["/"], "service": "users"}]}],
    }
    cfg.update(extra)
    return cfg


def test_bound_hosts_select_the_environment_and_its_variables_pick_the_backend(gateway_factory, origin_factory):
    prod, test = origin_factory("prod-origin"), origin_factory("test-origin")
    gw = gateway_factory(two_environments(prod, test))
    assert served_by(get(gw, "/users/1", PROD_HOST)) == "prod-origin"
    assert served_by(get(gw, "/users/2", TEST_HOST)) == "test-origin"
    assert served_by(get(gw, "/users/3", "EU.Test.Example.Test:8080")) == "test-origin"  # wildcard, any case
    assert [r.path for r in prod.requests] == ["/users/1"]
    assert [r.path for r in test.requests] == ["/users/2", "/users/3"]
    rec = gw.wait_for_access_log(lambda r: r["path"] == "/users/2")
    assert (rec["environment"], rec["api"], rec["api_version"], rec["target"]) == ("test", "users", "1", test.url)
    rec = gw.wait_for_access_log(lambda r: r["path"] == "/users/1")
    assert (rec["environment"], rec["target"]) == ("prod", prod.url)
    metrics = gw.metrics()
    assert re.search(r'tollgate_requests_total\{environment="test",api="users",route="all"[^}]*\} 2\b', metrics), metrics
    assert re.search(r'tollgate_requests_total\{environment="prod",api="users",route="all"[^}]*\} 1\b', metrics), metrics


def test_the_environment_header_selects_only_environments_that_allow_it_and_is_never_forwarded(
    gateway_factory, origin_factory
):
    prod, test = origin_factory("prod-origin"), origin_factory("test-origin")
    gw = gateway_factory(two_environments(prod, test))
    # test allows header selection: reachable from prod's host.
    assert served_by(get(gw, "/a", PROD_HOST, {"x-tollgate-env": "test"})) == "test-origin"
    # prod does not: the header is ignored and the host decides.
    assert served_by(get(gw, "/b", TEST_HOST, {"X-Tollgate-Env": "prod"})) == "test-origin"
    # An unknown environment is ignored too.
    assert served_by(get(gw, "/c", PROD_HOST, {"x-tollgate-env": "nope"})) == "prod-origin"
    for rec in prod.requests + test.requests:
        assert not rec.has_header("x-tollgate-env"), rec.headers


def test_policies_and_mocks_see_the_selected_environment(gateway_factory, origin_factory):
    """The request context carries the selected environment's name: the echo mock shows it."""
    prod, test = origin_factory("prod-origin"), origin_factory("test-origin")
    gw = gateway_factory(two_environments(
        prod, test,
        services=[{"name": "users", "targets": [{"url": "${vars.backend}"}]},
                  {"name": "echo", "mock": {"echo": True}}],
        apis=[{"name": "users", "routes": [{"name": "echo", "paths": ["/echo"], "service": "echo"}]}],
    ))
    assert get(gw, "/echo", PROD_HOST).json()["environment"] == "prod"
    assert get(gw, "/echo", TEST_HOST).json()["environment"] == "test"
    assert get(gw, "/echo", PROD_HOST, {"x-tollgate-env": "test"}).json()["environment"] == "test"


def test_a_custom_environment_header(gateway_factory, origin_factory):
    prod, test = origin_factory("prod-origin"), origin_factory("test-origin")
    gw = gateway_factory(two_environments(prod, test, server={"environment_header": "X-Stage"}))
    assert served_by(get(gw, "/a", PROD_HOST, {"x-stage": "test"})) == "test-origin"
    assert served_by(get(gw, "/b", PROD_HOST, {"x-tollgate-env": "test"})) == "prod-origin"
    assert not test.requests[-1].has_header("x-stage")
    # The default header is an ordinary header now: forwarded.
    assert prod.requests[-1].header("x-tollgate-env") == "test"


def test_the_hostless_environment_takes_unbound_hosts(gateway_factory, origin_factory):
    prod, test = origin_factory("prod-origin"), origin_factory("test-origin")
    gw = gateway_factory(two_environments(prod, test, prod_hosts=()))
    assert served_by(get(gw, "/x", "anything.example.org")) == "prod-origin"
    assert served_by(get(gw, "/x", "127.0.0.1")) == "prod-origin"
    assert served_by(get(gw, "/x", TEST_HOST)) == "test-origin"


def test_no_environment_for_an_unbound_host_is_a_404(gateway_factory, origin_factory):
    prod, test = origin_factory("prod-origin"), origin_factory("test-origin")
    gw = gateway_factory(two_environments(
        prod, test,
        policies=[{"name": "response-headers", "config": {"set": {"x-served-by": "tollgate"}}}],
    ))
    r = get(gw, "/x", "unknown.example.org")
    assert_error(r, 404, "no_environment")
    assert r.headers["x-served-by"] == "tollgate"  # global response policies still run
    # The header may still select an environment that allows it.
    assert served_by(get(gw, "/x", "unknown.example.org", {"x-tollgate-env": "test"})) == "test-origin"
    assert not prod.requests
    rec = gw.wait_for_access_log(lambda r: r["status"] == 404)
    assert (rec["environment"], rec["route"], rec["error"]) == (None, None, "no_environment")
    assert re.search(r'tollgate_requests_total\{environment="",api="",route=""[^}]*status_class="4xx"\} 1\b',
                     gw.metrics())


def test_versions_are_published_per_environment_and_drafts_are_not_served(gateway_factory, origin_factory):
    v1, v2 = origin_factory("v1-origin"), origin_factory("v2-origin")
    gw = gateway_factory({
        "environments": [{"name": "prod"}, {"name": "test", "hosts": [TEST_HOST]}],
        "services": [
            {"name": "users-v1", "targets": [{"url": v1.url}]},
            {"name": "users-v2", "targets": [{"url": v2.url}]},
            {"name": "draft", "mock": {"body": "draft"}},
        ],
        "apis": [
            {"name": "users", "version": "1", "publish": ["prod"],
             "routes": [{"name": "list", "paths": ["/users"], "service": "users-v1"}]},
            {"name": "users", "version": "2", "publish": ["test"],
             "routes": [{"name": "list", "paths": ["/users"], "service": "users-v2"}]},
            # A draft: same path as the live versions, no conflict, never served.
            {"name": "users", "version": "3", "publish": [],
             "routes": [{"name": "list", "paths": ["/users"], "service": "draft"},
                        {"name": "new", "paths": ["/new"], "service": "draft"}]},
        ],
    })
    assert served_by(get(gw, "/users", PROD_HOST)) == "v1-origin"
    assert served_by(get(gw, "/users", TEST_HOST)) == "v2-origin"
    assert_error(get(gw, "/new", PROD_HOST), 404, "route_not_found")
    assert_error(get(gw, "/new", TEST_HOST), 404, "route_not_found")
    versions = {(r["environment"], r["api_version"]) for r in gw.access_log() if r["route"] == "list"}
    assert versions == {("prod", "1"), ("test", "2")}


def test_deprecated_versions_announce_it_in_their_environment_only(gateway_factory, origin_factory):
    origin = origin_factory(
        "origin", handler=lambda rec: (200, [("link", '</page/2>; rel="next"')], b"ok"))
    gw = gateway_factory({
        "environments": [{"name": "prod"}, {"name": "test", "hosts": [TEST_HOST]}],
        "services": [{"name": "o", "targets": [{"url": origin.url}]},
                     {"name": "down", "targets": [{"url": "http://127.0.0.1:9"}]}],
        "apis": [{
            "name": "users", "version": "1",
            "deprecation": {"prod": {
                "at": "2026-01-01T00:00:00Z", "sunset": "2026-12-31T00:00:00Z",
                "link": "https://developer.example.com/users-v2",
            }},
            "routes": [{"name": "r", "paths": ["/users"], "service": "o"},
                       {"name": "broken", "paths": ["/broken"], "service": "down"}],
        }, {
            "name": "orders",
            "deprecation": {"prod": {"at": "2099-01-01T00:00:00Z"}},  # announced ahead of time
            "routes": [{"name": "r", "paths": ["/orders"], "service": "o"}],
        }],
    })
    r = get(gw, "/users", PROD_HOST)
    assert r.status_code == 200
    assert r.headers["deprecation"] == "@1767225600"
    assert r.headers["sunset"] == "Thu, 31 Dec 2026 00:00:00 GMT"
    assert r.headers.get_list("link") == [
        '</page/2>; rel="next"', '<https://developer.example.com/users-v2>; rel="deprecation"']
    # Error answers of the deprecated version carry them too.
    r = get(gw, "/broken", PROD_HOST)
    assert r.status_code == 502 and r.headers["deprecation"] == "@1767225600"
    # A future date is announced as it is.
    r = get(gw, "/orders", PROD_HOST)
    assert r.headers["deprecation"] == "@4070908800" and "sunset" not in r.headers
    # Not deprecated in test.
    r = get(gw, "/users", TEST_HOST)
    assert r.status_code == 200
    assert "deprecation" not in r.headers and "sunset" not in r.headers
    assert r.headers.get_list("link") == ['</page/2>; rel="next"']


def test_a_reload_reroutes_a_changed_variable_and_keeps_the_unchanged_pool(gateway_factory, origin_factory):
    prod, test, test2 = origin_factory("prod-origin"), origin_factory("test-origin"), origin_factory("test2-origin")
    config = two_environments(prod, test, server={"workers": 1})  # one pool per service resolution
    gw = gateway_factory(config)
    assert served_by(get(gw, "/a", PROD_HOST)) == "prod-origin"
    assert served_by(get(gw, "/a", TEST_HOST)) == "test-origin"
    config["environments"][1]["variables"]["backend"] = test2.url
    gw.write_config(config)
    gw.reload()
    deadline = time.monotonic() + 10
    while served_by(get(gw, "/b", TEST_HOST)) != "test2-origin":
        assert time.monotonic() < deadline, "reload not applied"
        time.sleep(0.02)
    assert served_by(get(gw, "/c", PROD_HOST)) == "prod-origin"
    # prod's resolution did not change: its pooled connection survived the reload.
    assert len({r.connection_id for r in prod.requests}) == 1


def test_variables_from_the_process_environment(gateway_factory, origin_factory):
    prod = origin_factory("prod-origin")
    gw = gateway_factory(
        """
environments:
  - name: prod
    variables: {backend: "${PROD_BACKEND}"}
services:
  - name: users
    targets: [{url: "${vars.backend}/base"}]
apis:
  - name: users
    routes: [{name: all, paths: ["/"], service: users}]
""",
        env={"PROD_BACKEND": prod.url},
    )
    assert served_by(get(gw, "/x", "any.host")) == "prod-origin"
    assert prod.requests[-1].path == "/base/x"


INVALID = """\
environments:
  - name: prod
    hosts: [api.example.test]
    variables: {backend: "http://127.0.0.1:9000"}
  - name: test
    hosts: [api.example.test]
services:
  - name: users
    targets:
      - url: "${vars.backend}"
apis:
  - name: users
    version: "1"
    deprecation:
      test: {at: "2026-01-01T00:00:00Z", sunset: "2025-01-01T00:00:00Z"}
    publish: [prod, stage]
    routes: [{name: r, paths: [/u], service: users}]
  - name: users
    version: "2"
    routes: [{name: r, paths: [/u], service: users}]
"""


def line_of(text: str, needle: str, nth: int = 1) -> int:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


def test_validate_reports_environment_mistakes_with_field_paths(tollgate_bin, tmp_path):
    path = tmp_path / "envs.yaml"
    path.write_text(INVALID)
    proc = subprocess.run([tollgate_bin, "validate", "-c", str(path)], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2, proc.stderr
    out = proc.stderr + proc.stdout
    expected = [
        (line_of(INVALID, "api.example.test", 2),
         'environments[1].hosts[0]: host "api.example.test" is already bound to environment "prod"'),
        (line_of(INVALID, "url:"),
         'services[0].targets[0].url: variable "backend" is not defined in environment "test" '
         "(apis[1].routes[0] uses this service there)"),
        (line_of(INVALID, "test: {at"),
         'apis[0].deprecation.test: API "users" version "1" is not published in environment "test"'),
        (line_of(INVALID, "test: {at"),
         "apis[0].deprecation.test.sunset: the sunset (2025-01-01T00:00:00Z) must be after"),
        (line_of(INVALID, "publish:"),
         'apis[0].publish[1]: no environment named "stage" (known: prod, test)'),
        (line_of(INVALID, "- name: users", 3),
         'apis[1].publish: API "users" has two versions live in environment "prod": "1" (apis[0]) and "2"'),
    ]
    for line, message in expected:
        assert re.search(rf"{re.escape(str(path))}:{line}:\d+: {re.escape(message)}", out), (line, message, out)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_single_version_live_everywhere_needs_no_environments(gateway_factory, origin, version):
    gw = gateway_factory({
        "services": [{"name": "o", "targets": [{"url": origin.url}]}],
        "apis": [{"name": "a", "version": version, "publish": ["prod"],
                  "routes": [{"name": "r", "paths": ["/"], "service": "o"}]}],
    })
    r = get(gw, "/x", "whatever.example", {"x-tollgate-env": "prod"})
    assert r.status_code == 200
    assert not origin.requests[-1].has_header("x-tollgate-env")
    rec = gw.wait_for_access_log(lambda r: r["path"] == "/x")
    assert (rec["environment"], rec["api_version"]) == ("prod", version)
