"""Self-checks of the end-to-end harness (fixtures other test files rely on)."""

from __future__ import annotations

import signal
import time

import httpx

from support.configs import one_route


def test_write_config_and_sighup_reload_keep_the_listeners(gateway_factory, origin_factory):
    a, b = origin_factory("a"), origin_factory("b")
    gw = gateway_factory(one_route(a))
    assert httpx.get(gw.proxy_url + "/x").headers["x-origin-name"] == "a"
    gw.write_config(one_route(b))  # no `listen`: the running gateway's addresses are kept
    gw.reload()
    deadline = time.monotonic() + 10
    while httpx.get(gw.proxy_url + "/x").headers["x-origin-name"] != "b":
        assert time.monotonic() < deadline, gw.stderr_text()
        time.sleep(0.05)
    assert "tollgate_" in gw.metrics()
    assert gw.stop() == 0
    assert not gw.is_running()


def test_yaml_text_config_gets_listen_filled_and_access_log_is_parsed(gateway_factory, origin):
    gw = gateway_factory(f"""
services:
  - name: s
    targets: [{{url: "{origin.url}"}}]
apis:
  - name: api
    routes: [{{name: r, paths: ["/"], service: s}}]
""")
    assert httpx.get(gw.proxy_url + "/echo/yaml").status_code == 200
    rec = gw.wait_for_access_log(lambda r: r["path"] == "/echo/yaml")
    assert rec["status"] == 200 and rec["route"] == "r"
    assert gw.wait_for_log("listening", timeout=5)
    assert gw.tls_url is None


def test_sigterm_exits_zero_and_sigkill_is_reported(gateway_factory, origin):
    gw = gateway_factory(one_route(origin))
    assert gw.stop(signal.SIGTERM, timeout=30) == 0
    gw2 = gateway_factory(one_route(origin))
    assert gw2.stop(signal.SIGKILL) == -signal.SIGKILL
