"""Store mode end to end: the gateway keeps its configuration in SQLite (default) or
PostgreSQL, changed through the CLI and the admin API, live without a restart, kept across
restarts, with the lifecycle of API versions across environments."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
import yaml

CONFIG = """
environments:
  - name: prod
    hosts: [prod.test]
  - name: test
    hosts: [test.test]
services:
  - name: origin
    targets: [{url: "${ORIGIN}"}]
  - name: hello
    mock: {status: 200, body: "hello v1\\n"}
  - name: hello2
    mock: {status: 200, body: "hello v2\\n"}
apis:
  - name: hello
    version: "1"
    publish: [prod, test]
    routes:
      - {name: hi, paths: ["= /hi"], service: hello}
      - {name: up, paths: ["/up"], service: origin}
  - name: hello
    version: "2"
    publish: []
    routes:
      - {name: hi, paths: ["= /hi"], service: hello2}
consumers:
  - name: app
    credentials:
      - {type: key-auth, id: k1, key: "${APP_KEY}"}
"""


def get(gw, path, host):
    return httpx.get(gw.proxy_url + path, headers={"Host": host}, timeout=5)


def apply(gw, tmp_path, text, env=None):
    path = tmp_path / "apply.yaml"
    path.write_text(text)
    e = {"ORIGIN": "http://127.0.0.1:9", "APP_KEY": "k-secret-123"}
    e.update(env or {})
    gw.env.update(e)
    return gw.cli("config", "apply", "-f", str(path))


def run_lifecycle(gw, tmp_path, origin):
    done = apply(gw, tmp_path, CONFIG, {"ORIGIN": origin.url})
    assert done.returncode == 0, done.stderr
    gw.wait_live(lambda: get(gw, "/hi", "prod.test").text == "hello v1\n")
    assert get(gw, "/up/x", "test.test").status_code == 200
    assert origin.requests[-1].path == "/up/x"

    # Applying the same file again changes nothing.
    revision = gw.api("GET", "/api/v1/status").json()["revision"]
    again = apply(gw, tmp_path, CONFIG, {"ORIGIN": origin.url})
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout
    assert gw.api("GET", "/api/v1/status").json()["revision"] == revision

    # Publish v2 to test only; prod keeps v1.
    done = gw.cli("api", "publish", "hello", "2", "--env", "test", "--note", "try v2")
    assert done.returncode == 0, done.stderr
    gw.wait_live(lambda: get(gw, "/hi", "test.test").text == "hello v2\n")
    assert get(gw, "/hi", "prod.test").text == "hello v1\n"

    # Roll test back to v1, then unpublish from prod: 404 there, test still serves.
    assert gw.cli("api", "rollback", "hello", "--env", "test").returncode == 0
    gw.wait_live(lambda: get(gw, "/hi", "test.test").text == "hello v1\n")
    assert gw.cli("api", "unpublish", "hello", "--env", "prod").returncode == 0
    gw.wait_live(lambda: get(gw, "/hi", "prod.test").status_code == 404)
    assert get(gw, "/hi", "test.test").status_code == 200

    # Deprecate in test: still served, with RFC 9745 / RFC 8594 headers.
    done = gw.cli("api", "deprecate", "hello", "--env", "test", "--sunset", "2030-01-01T00:00:00Z")
    assert done.returncode == 0, done.stderr
    gw.wait_live(lambda: "deprecation" in get(gw, "/hi", "test.test").headers)
    r = get(gw, "/hi", "test.test")
    assert r.status_code == 200
    assert r.headers["deprecation"].startswith("@")
    assert r.headers["sunset"] == "Tue, 01 Jan 2030 00:00:00 GMT"

    # History, newest first, as JSON for scripts.
    done = gw.cli("api", "releases", "hello", "--env", "test", "--output", "json")
    assert done.returncode == 0, done.stderr
    actions = [r["action"] for r in json.loads(done.stdout)["items"]]
    assert actions == ["deprecate", "rollback", "publish", "publish"], actions

    # Export: the whole state, secrets only hashed; it applies back as a no-op.
    done = gw.cli("config", "export")
    assert done.returncode == 0, done.stderr
    assert "k-secret-123" not in done.stdout
    exported = yaml.safe_load(done.stdout)
    cred = exported["consumers"][0]["credentials"][0]
    assert "key" not in cred and len(cred["key_sha256"]) == 64
    v1 = next(a for a in exported["apis"] if a["version"] == "1")
    assert v1["publish"] == ["test"] and "test" in v1["deprecation"]
    revision = gw.api("GET", "/api/v1/status").json()["revision"]
    again = apply(gw, tmp_path, done.stdout)
    assert again.returncode == 0, again.stderr
    assert gw.api("GET", "/api/v1/status").json()["revision"] == revision


def test_sqlite_store_lifecycle_and_restart(store_gateway_factory, origin, tmp_path):
    gw = store_gateway_factory()
    run_lifecycle(gw, tmp_path, origin)
    # Everything survives a restart (SQLite file in the data directory).
    gw.stop()
    gw.start()
    assert get(gw, "/hi", "test.test").text == "hello v1\n"
    assert get(gw, "/hi", "prod.test").status_code == 404


def test_postgres_store_lifecycle(store_gateway_factory, postgres_db, origin, tmp_path):
    gw = store_gateway_factory(store_url=postgres_db.url)
    run_lifecycle(gw, tmp_path, origin)


def test_invalid_apply_changes_nothing(store_gateway_factory, tmp_path):
    gw = store_gateway_factory()
    assert apply(gw, tmp_path, CONFIG).returncode == 0
    revision = gw.api("GET", "/api/v1/status").json()["revision"]
    bad = CONFIG.replace("service: hello2", "service: nope")
    done = apply(gw, tmp_path, bad)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "nope" in done.stderr and "routes[0].service" in done.stderr, done.stderr
    # A published version cannot be changed by apply either (409), and nothing is written.
    changed = CONFIG.replace('body: "hello v1\\\\n"', 'body: "changed\\\\n"').replace(
        "paths: [\"= /hi\"], service: hello}", "paths: [\"= /hi2\"], service: hello}", 1)
    done = apply(gw, tmp_path, changed)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert gw.api("GET", "/api/v1/status").json()["revision"] == revision


def test_cli_errors_are_clear(store_gateway_factory, tollgate_bin):
    gw = store_gateway_factory()
    done = gw.cli("api", "list", token="wrong")
    assert done.returncode == 2
    assert "401" in done.stderr
    viewer = gw.create_token("viewer")
    done = gw.cli("api", "publish", "x", "1", "--env", "prod", token=viewer)
    assert done.returncode == 2 and "403" in done.stderr, done.stderr
    done = subprocess.run([tollgate_bin, "api", "list", "--admin", "http://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "cannot reach the admin API" in done.stderr


def test_tokens_are_stored_hashed(store_gateway_factory):
    gw = store_gateway_factory(start=False)
    db = (gw.data_dir / "tollgate.db").read_bytes()
    assert gw.token.encode() not in db
    assert gw.token.startswith("tg_")


def test_openapi_import_cli_output_is_a_valid_config(tollgate_bin, tmp_path):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "crates/tollgate-openapi/tests/data/petstore.yaml"
    done = subprocess.run([tollgate_bin, "openapi", "import", str(spec), "--service", "pets"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    fragment = yaml.safe_load(done.stdout)
    api = fragment["apis"][0]
    assert any(r["paths"] == ["/pets/{petId}"] for r in api["routes"]), api["routes"]
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "services": [{"name": "pets", "targets": [{"url": "http://127.0.0.1:9"}]}],
        **fragment,
    }))
    checked = subprocess.run([tollgate_bin, "validate", "-c", str(config)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths:\n  /x:\n    get:\n"
                   "      parameters:\n        - $ref: '#/components/parameters/Nope'\n"
                   "      responses: {'200': {description: ok}}\n")
    done = subprocess.run([tollgate_bin, "openapi", "import", str(bad), "--service", "pets"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "Nope" in done.stderr, done.stderr


def test_debug_a_draft_version_with_trace(store_gateway_factory, origin, tmp_path):
    gw = store_gateway_factory()
    cfg = CONFIG + """
policies:
  - name: response-headers
    config: {set: {x-served-by: tollgate}}
"""
    assert apply(gw, tmp_path, cfg, {"ORIGIN": origin.url}).returncode == 0
    # A draft that routes /up/{id} to the origin with a request header added.
    draft = {
        "name": "hello", "version": "3",
        "routes": [{"name": "item", "paths": ["/up/{id}"], "service": "origin",
                    "policies": [{"name": "request-headers", "config": {"set": {"x-debug": "yes"}}}]}],
    }
    r = gw.api("POST", "/api/v1/apis", json=draft)
    assert r.status_code == 201, r.text
    before = len(origin.requests)
    r = gw.api("POST", "/api/v1/apis/hello/versions/3/debug",
               json={"method": "GET", "path": "/up/42?x=1", "environment": "test"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["status"] == 200
    assert result["environment"] == "test"
    assert result["headers"]["x-served-by"] == "tollgate"
    assert "x-tollgate-debug-trace" not in result["headers"]
    trace = result["trace"]
    assert trace["route"] == "item" and trace["api_version"] == "3"
    assert trace["params"] == {"id": "42"}
    steps = [(s["phase"], s["policy"], s["decision"]) for s in trace["steps"]]
    assert ("upstream", "request-headers", "continue") in steps, steps
    assert ("response", "response-headers", "continue") in steps, steps
    assert trace["upstream"]["target"].startswith("http://127.0.0.1:")
    # The request really reached the backend, through the draft's policies.
    assert len(origin.requests) == before + 1
    assert origin.requests[-1].header("x-debug") == "yes"
    # The draft is still not live anywhere.
    assert get(gw, "/up/42", "test.test").status_code == 200  # v1's prefix route
    assert "x-debug" not in dict(origin.requests[-1].headers)

    # A request no route matches: 404 with the code in the trace.
    r = gw.api("POST", "/api/v1/apis/hello/versions/3/debug", json={"path": "/nothing"})
    assert r.status_code == 200 and r.json()["status"] == 404
    assert r.json()["trace"]["error"] == "route_not_found"
    # Unknown version, viewer token, bad method.
    assert gw.api("POST", "/api/v1/apis/hello/versions/9/debug", json={"path": "/"}).status_code == 404
    viewer = gw.create_token("viewer")
    assert gw.api("POST", "/api/v1/apis/hello/versions/3/debug", json={"path": "/"},
                  token=viewer).status_code == 403
    r = gw.api("POST", "/api/v1/apis/hello/versions/3/debug", json={"path": "/", "method": "GE T"})
    assert r.status_code == 400, r.text
