"""Renewed certificate files are picked up by file watching, without SIGHUP."""

from __future__ import annotations

import shutil
import time

from test_tls import handshake, inspect_ctx, sans

MOCK = {
    "services": [{"name": "echo", "mock": {"echo": True}}],
    "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["/"], "service": "echo"}]}],
}


def test_replaced_certificate_files_are_reloaded_when_watching(gateway_factory, certs, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "cert.pem", live / "key.pem"
    shutil.copy(certs.a_test.cert, cert)
    shutil.copy(certs.a_test.key, key)
    gw = gateway_factory(
        {**MOCK, "tls": {"certificates": [{"cert": str(cert), "key": str(key), "hosts": ["site.test"]}]}},
        args=("--watch",),
    )
    assert sans(handshake(gw.tls_port, inspect_ctx(certs), "site.test")[2]) == {"a.test"}
    # "Renew": the same paths now hold another certificate (written as renewal tools do).
    for src, dst in ((certs.b_test.cert, cert), (certs.b_test.key, key)):
        tmp = dst.with_suffix(".new")
        shutil.copy(src, tmp)
        tmp.rename(dst)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if sans(handshake(gw.tls_port, inspect_ctx(certs), "site.test")[2]) == {"b.test"}:
            break
        time.sleep(0.1)
    assert sans(handshake(gw.tls_port, inspect_ctx(certs), "site.test")[2]) == {"b.test"}
    gw.wait_for_log("configuration reloaded", timeout=5)
