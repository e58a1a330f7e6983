"""Access log, Prometheus metrics, process log verbosity and health endpoints."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import httpx
import pytest

from support.ports import free_port

ACCESS_FIELDS = {
    "time", "request_id", "client_ip", "method", "host", "path", "route", "service", "target",
    "status", "bytes_in", "bytes_out", "duration_ms", "upstream_ms",
}


def obs_config(origin, **server) -> dict:
    cfg = {
        "services": [
            {"name": "origin-svc", "targets": [{"url": origin.url}]},
            {"name": "hello", "mock": {"status": 200, "body": "hello\n"}},
        ],
        "apis": [
            {
                "name": "obs-api",
                "routes": [
                    {"name": "upload-route", "paths": ["= /upload"], "methods": ["POST"], "service": "origin-svc"},
                    {"name": "bytes-route", "paths": ["/bytes"], "service": "origin-svc"},
                    {"name": "status-route", "paths": ["/status"], "service": "origin-svc"},
                    {"name": "hello-route", "paths": ["= /hello"], "service": "hello"},
                ],
            }
        ],
    }
    if server:
        cfg["server"] = server
    return cfg


def wait_lines(read, n: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        lines = read()
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def chunks(total: int, size: int = 7000):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"u" * n
        sent += n


# ------------------------------------------------------------------------------------ access log


def test_access_log_has_one_json_line_per_request_with_correct_values(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=10) as c:
        up = c.post("/upload", content=chunks(100_000), headers={"x-request-id": "obs-upload-1"})
        assert up.status_code == 200
        assert up.json()["len"] == 100_000
        assert origin.last().header("transfer-encoding") == "chunked"  # no Content-Length anywhere
        fixed = c.post("/upload", content=b"z" * 1234)
        assert fixed.status_code == 200
        by = c.get("/bytes/123456")
        assert by.status_code == 200 and len(by.content) == 123456
        st = c.get("/status/503")
        assert st.status_code == 503
        mock = c.get("/hello")
        assert mock.text == "hello\n"
        missing = c.get("/no/such/route")
        assert missing.status_code == 404

    lines = wait_lines(gw.access_log, 6)
    assert len(lines) == 6, lines
    for rec in lines:
        assert ACCESS_FIELDS <= rec.keys(), f"missing {ACCESS_FIELDS - rec.keys()} in {rec}"
        t = dt.datetime.fromisoformat(rec["time"].replace("Z", "+00:00"))
        assert abs((dt.datetime.now(dt.timezone.utc) - t).total_seconds()) < 60
        assert rec["client_ip"] == "127.0.0.1"
        assert rec["host"] == "127.0.0.1"
        assert isinstance(rec["duration_ms"], (int, float)) and rec["duration_ms"] >= 0
        assert rec["request_id"]
    by_path = {}
    for rec in lines:
        by_path.setdefault(rec["path"], []).append(rec)

    chunked, fixed_rec = by_path["/upload"]
    assert chunked["request_id"] == "obs-upload-1" == up.headers["x-request-id"]
    assert chunked["method"] == "POST"
    assert chunked["route"] == "upload-route"
    assert chunked["service"] == "origin-svc"
    assert chunked["target"] == origin.url
    assert chunked["status"] == 200
    assert chunked["bytes_in"] == 100_000  # counted while streaming (no Content-Length)
    assert chunked["bytes_out"] == len(up.content)
    assert isinstance(chunked["upstream_ms"], (int, float))
    assert 0 <= chunked["upstream_ms"] <= chunked["duration_ms"]
    assert fixed_rec["bytes_in"] == 1234
    assert fixed_rec["request_id"] == fixed.headers["x-request-id"]

    (b,) = by_path["/bytes/123456"]
    assert (b["method"], b["route"], b["status"], b["bytes_in"], b["bytes_out"]) == ("GET", "bytes-route", 200, 0, 123456)

    (s,) = by_path["/status/503"]
    assert (s["route"], s["status"], s["target"]) == ("status-route", 503, origin.url)

    (h,) = by_path["/hello"]
    assert (h["route"], h["service"], h["status"], h["bytes_out"]) == ("hello-route", "hello", 200, 6)
    assert h["target"] is None and h["upstream_ms"] is None

    (m,) = by_path["/no/such/route"]
    assert m["status"] == 404
    assert m["route"] is None and m["service"] is None and m["target"] is None
    assert m["bytes_out"] == len(missing.content)


def test_access_log_head_request_is_not_marked_aborted(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin))
    r = httpx.head(gw.proxy_url + "/hello", timeout=5)
    assert r.status_code == 200 and r.content == b""
    rec = gw.wait_for_access_log(lambda l: l.get("method") == "HEAD")
    assert rec["status"] == 200 and rec["bytes_out"] == 0
    assert rec.get("error") is None, rec


def test_access_log_marks_a_response_the_client_abandoned(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=10) as c:
        with c.stream("GET", "/bytes/50000000") as r:
            assert r.status_code == 200
            next(r.iter_raw())  # read a little, then hang up
    rec = gw.wait_for_access_log(lambda l: l.get("path") == "/bytes/50000000", timeout=10)
    assert rec["error"] == "response_aborted"
    assert 0 < rec["bytes_out"] < 50_000_000


def test_access_log_disabled_writes_no_lines(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin, access_log={"enabled": False}))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        for _ in range(5):
            assert c.get("/hello").status_code == 200
    time.sleep(0.5)
    assert gw.access_log() == []
    # the requests were served and counted nevertheless
    assert re.search(r'tollgate_requests_total\{[^}]*route="hello-route"[^}]*\} 5\b', gw.metrics())


def test_access_log_output_file_receives_the_lines(gateway_factory, origin, tmp_path):
    out = tmp_path / "logs" / "access.jsonl"
    out.parent.mkdir()
    gw = gateway_factory(obs_config(origin, access_log={"output": str(out)}))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        ids = [c.get("/hello").headers["x-request-id"] for _ in range(3)]

    def read():
        if not out.exists():
            return []
        return [json.loads(l) for l in out.read_text().splitlines() if l.strip()]

    lines = wait_lines(read, 3)
    assert [l["request_id"] for l in lines] == ids
    assert all(l["route"] == "hello-route" for l in lines)
    assert gw.access_log() == []  # nothing on stdout


# ------------------------------------------------------------------------------------ metrics

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$")


def samples(text: str, name: str) -> list[tuple[dict, float]]:
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((labels, float(m.group(3))))
    return out


def value(text: str, name: str, **labels) -> float:
    found = [v for l, v in samples(text, name) if all(l.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def test_metrics_count_requests_by_route_service_status_class_and_histogram(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin))
    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        for _ in range(3):
            assert c.get("/bytes/10").status_code == 200
        for _ in range(2):
            assert c.get("/status/503").status_code == 503
        assert c.get("/status/404").status_code == 404
        assert c.get("/nope").status_code == 404
    text = gw.metrics()
    assert value(text, "tollgate_requests_total", route="bytes-route", service="origin-svc", status_class="2xx") == 3
    assert value(text, "tollgate_requests_total", route="status-route", service="origin-svc", status_class="5xx") == 2
    assert value(text, "tollgate_requests_total", route="status-route", service="origin-svc", status_class="4xx") == 1
    assert value(text, "tollgate_requests_total", route="", service="", status_class="4xx") == 1
    assert "# TYPE tollgate_request_duration_seconds histogram" in text

    buckets = [(l["le"], v) for l, v in samples(text, "tollgate_request_duration_seconds_bucket")
               if l.get("route") == "bytes-route" and l.get("service") == "origin-svc"]
    les = [le for le, _ in buckets]
    assert les[-1] == "+Inf" and {"0.005", "0.1", "1.0"} <= set(les), les
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert counts[-1] == 3
    assert value(text, "tollgate_request_duration_seconds_count", route="bytes-route", service="origin-svc") == 3
    assert value(text, "tollgate_request_duration_seconds_sum", route="bytes-route", service="origin-svc") > 0
    assert value(text, "tollgate_upstream_duration_seconds_count", service="origin-svc") == 6

    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        for _ in range(4):
            assert c.get("/bytes/10").status_code == 200
    text2 = gw.metrics()
    assert value(text2, "tollgate_requests_total", route="bytes-route", service="origin-svc", status_class="2xx") == 7
    assert value(text2, "tollgate_request_duration_seconds_count", route="bytes-route", service="origin-svc") == 7
    inf = [v for l, v in samples(text2, "tollgate_request_duration_seconds_bucket")
           if l.get("route") == "bytes-route" and l.get("le") == "+Inf"]
    assert inf == [7]


def test_metrics_endpoint_serves_prometheus_text(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin))
    r = httpx.get(gw.status_url + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(("text/plain", "application/openmetrics-text"))
    assert "# TYPE tollgate_requests counter" in r.text or "# TYPE tollgate_requests_total counter" in r.text
    assert value(r.text, "tollgate_config_revision") == 1


def test_admin_metrics_need_a_token_and_the_status_listener_does_not(gateway_factory, origin, tmp_path):
    import hashlib

    viewer = "tg_viewer_" + "x" * 32
    token_file = tmp_path / "admin-tokens"
    token_file.write_text(
        "# scrapers\n"
        f"viewer {hashlib.sha256(viewer.encode()).hexdigest()} prometheus\n")
    gw = gateway_factory(obs_config(origin), args=("--admin-token-file", str(token_file)))
    httpx.get(gw.proxy_url + "/hello", timeout=5)

    missing = httpx.get(gw.admin_url + "/metrics", timeout=5)
    assert missing.status_code == 401
    error = missing.json()["error"]
    assert error["code"] == "unauthorized" and "status listener" in error["message"], error
    wrong = httpx.get(gw.admin_url + "/metrics", timeout=5, headers={"Authorization": "Bearer tg_nope"})
    assert wrong.status_code == 401 and "tollgate_requests" not in wrong.text

    ok = httpx.get(gw.admin_url + "/metrics", timeout=5, headers={"Authorization": f"Bearer {viewer}"})
    assert ok.status_code == 200 and "tollgate_requests_total" in ok.text
    # the same token reads the admin API; health needs none on either listener
    assert httpx.get(gw.admin_url + "/api/v1/status", timeout=5,
                     headers={"Authorization": f"Bearer {viewer}"}).status_code == 200
    assert httpx.get(gw.admin_url + "/health/ready", timeout=5).status_code == 200

    open_metrics = httpx.get(gw.status_url + "/metrics", timeout=5)
    assert open_metrics.status_code == 200 and "tollgate_requests_total" in open_metrics.text
    assert httpx.get(gw.status_url + "/health/live", timeout=5).text == "ok\n"
    # the status listener has no admin API
    assert httpx.get(gw.status_url + "/api/v1/status", timeout=5,
                     headers={"Authorization": f"Bearer {viewer}"}).status_code == 404


# ------------------------------------------------------------------------------------ log level


def unreachable_config() -> dict:
    return {
        "services": [{"name": "dead", "targets": [{"url": f"http://127.0.0.1:{free_port()}"}]}],
        "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["/"], "service": "dead"}]}],
    }


def test_log_level_debug_is_more_verbose_than_default(gateway_factory, monkeypatch):
    monkeypatch.delenv("RUST_LOG", raising=False)
    monkeypatch.delenv("TOLLGATE_LOG", raising=False)
    quiet = gateway_factory(unreachable_config())
    loud = gateway_factory(unreachable_config(), args=("--log-level", "debug"))
    for gw in (quiet, loud):
        r = httpx.get(gw.proxy_url + "/x", timeout=10)
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "upstream_unreachable"
    loud.wait_for_log("upstream request failed", timeout=5)
    quiet.wait_for_log("upstream request failed", timeout=5)
    time.sleep(0.3)
    q, l = quiet.stderr_text(), loud.stderr_text()
    assert "listening" in q and " INFO " in q
    assert " DEBUG " not in q
    assert " DEBUG " in l
    assert len(l.splitlines()) > len(q.splitlines())


def test_upstream_failures_are_logged_with_details_the_client_never_sees(gateway_factory):
    gw = gateway_factory(unreachable_config())
    r = httpx.get(gw.proxy_url + "/x", timeout=10)
    assert r.status_code == 502
    body = r.json()["error"]
    assert body["message"] == "cannot connect to the upstream"
    assert "127.0.0.1" not in r.text and "refused" not in r.text.lower()
    gw.wait_for_log("upstream request failed", timeout=5)
    line = next(l for l in gw.stderr_text().splitlines() if "upstream request failed" in l)
    assert " WARN " in line
    assert body["request_id"] in line
    assert "Connection refused" in line
    assert line.count("Connection refused") == 1, line


def test_log_level_warn_hides_info(gateway_factory, origin, monkeypatch):
    monkeypatch.delenv("RUST_LOG", raising=False)
    gw = gateway_factory(obs_config(origin), args=("--log-level", "warn"))
    assert httpx.get(gw.proxy_url + "/hello", timeout=5).status_code == 200
    assert " INFO " not in gw.stderr_text()
    assert "listening" not in gw.stderr_text()


# ------------------------------------------------------------------------------------ health


def test_health_live_and_ready_answer_200(gateway_factory, origin):
    gw = gateway_factory(obs_config(origin))
    live = httpx.get(gw.admin_url + "/health/live", timeout=5)
    ready = httpx.get(gw.admin_url + "/health/ready", timeout=5)
    assert live.status_code == 200
    assert ready.status_code == 200
    assert httpx.get(gw.admin_url + "/health/nope", timeout=5).status_code == 404
    # the admin endpoints are not served on the proxy listener
    assert httpx.get(gw.proxy_url + "/health/ready", timeout=5).status_code == 404


def test_process_logs_have_no_ansi_escapes_when_stderr_is_not_a_terminal(tollgate_bin, tmp_path):
    # Run without the fixture: it sets NO_COLOR and strips colour codes from what it reads.
    import os
    import subprocess

    admin = free_port()
    cfg = tmp_path / "tollgate.yaml"
    cfg.write_text(f"listen:\n  proxy: 127.0.0.1:{free_port()}\n  admin: 127.0.0.1:{admin}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "RUST_LOG", "TOLLGATE_LOG")}
    with open(tmp_path / "stderr.log", "wb") as err:  # as under systemd, docker or a log shipper
        proc = subprocess.Popen([tollgate_bin, "run", "-c", str(cfg), "--no-watch"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            deadline = time.monotonic() + 10
            while b"listening" not in (tmp_path / "stderr.log").read_bytes():
                assert proc.poll() is None and time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.02)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    raw = (tmp_path / "stderr.log").read_bytes()
    assert b"\x1b[" not in raw, raw[:200]
