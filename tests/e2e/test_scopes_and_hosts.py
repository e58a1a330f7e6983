"""Policy scope overrides, the upstream phase on mock services, Host handling, trusted proxy
addresses, and refusing to share a port with another gateway."""

from __future__ import annotations

import subprocess
import time

import httpx
import yaml

from support.ports import free_port


def test_disabled_policy_at_route_scope_switches_off_the_global_one(gateway_factory):
    gw = gateway_factory({
        "services": [{"name": "echo", "mock": {"echo": True}}],
        "policies": [{"name": "mock", "config": {"status": 503, "body": "maintenance"}}],
        "apis": [{"name": "a", "routes": [
            {"name": "open", "paths": ["/open"], "service": "echo",
             "policies": [{"name": "mock", "enabled": False, "config": {"body": "unused"}}]},
            {"name": "closed", "paths": ["/closed"], "service": "echo"},
        ]}],
    })
    assert httpx.get(gw.proxy_url + "/closed", timeout=5).status_code == 503
    r = httpx.get(gw.proxy_url + "/open", timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/open"


def test_upstream_phase_runs_for_mock_services(gateway_factory):
    gw = gateway_factory({
        "services": [{"name": "echo", "mock": {"echo": True}}],
        "apis": [{"name": "a", "routes": [{
            "name": "r", "paths": ["/"], "service": "echo",
            "policies": [{"name": "request-headers", "config": {"set": {"x-edited": "yes"}}}],
        }]}],
    })
    r = httpx.get(gw.proxy_url + "/x", timeout=5)
    assert r.json()["headers"]["x-edited"] == "yes"


def test_a_policy_can_set_the_upstream_host_and_forwarded_host_keeps_the_clients(gateway_factory, origin):
    gw = gateway_factory({
        "services": [{"name": "o", "targets": [{"url": origin.url}]}],
        "apis": [{"name": "a", "routes": [{
            "name": "r", "paths": ["/"], "service": "o",
            "policies": [{"name": "request-headers", "config": {"set": {"host": "internal.test"}}}],
        }]}],
    })
    with httpx.Client(http1=False, http2=True, timeout=5) as c:  # h2c: host in :authority
        assert c.get(gw.proxy_url + "/echo/h2").status_code == 200
    assert httpx.get(gw.proxy_url + "/echo/h1", headers={"host": "public.test"}, timeout=5).status_code == 200
    h2, h1 = origin.requests[-2], origin.requests[-1]
    assert h2.header("host") == "internal.test"
    assert h1.header("host") == "internal.test"
    assert h1.header("x-forwarded-host") == "public.test"
    assert "host=public.test" in h1.header("forwarded")


def test_trusted_proxies_accept_bare_addresses(gateway_factory, origin):
    gw = gateway_factory({
        "server": {"trusted_proxies": ["127.0.0.1", "::1"]},
        "services": [{"name": "o", "targets": [{"url": origin.url}]}],
        "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["/"], "service": "o"}]}],
    })
    httpx.get(gw.proxy_url + "/echo/x", headers={"x-forwarded-for": "203.0.113.7"}, timeout=5)
    assert origin.requests[-1].header("x-forwarded-for") == "203.0.113.7, 127.0.0.1"


def test_a_second_gateway_on_the_same_proxy_port_is_refused(gateway_factory, tollgate_bin, tmp_path):
    config = {
        "services": [{"name": "echo", "mock": {"echo": True}}],
        "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["/"], "service": "echo"}]}],
    }
    first = gateway_factory(config)
    second = dict(config, listen={"proxy": f"127.0.0.1:{first.proxy_port}", "admin": f"127.0.0.1:{free_port()}"})
    path = tmp_path / "second.yaml"
    path.write_text(yaml.safe_dump(second))
    proc = subprocess.run([tollgate_bin, "run", "-c", str(path), "--no-watch"],
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot listen on 127.0.0.1:{first.proxy_port}" in proc.stderr
    # The first one still serves.
    time.sleep(0.1)
    assert httpx.get(first.proxy_url + "/x", timeout=5).status_code == 200
