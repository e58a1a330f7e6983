"""TLS: downstream termination (SNI, versions, ALPN) and TLS to upstreams (verification, CA, SNI)."""

from __future__ import annotations

import os
import socket
import ssl
import struct

import httpx
import pytest

from support.configs import one_route

MOCK = {
    "services": [{"name": "hello", "mock": {"status": 200, "body": "hi\n"}}],
    "apis": [{"name": "api", "routes": [{"name": "r", "paths": ["/"], "service": "hello"}]}],
}


def tls_config(certs, **tls) -> dict:
    return {**MOCK, "tls": {"certificates": [certs.a_test.as_config(), certs.b_test.as_config(),
                                             certs.wild_test.as_config()], **tls}}


def handshake(port: int, ctx: ssl.SSLContext, server_hostname: str | None):
    """Connects, handshakes, returns (version, alpn, peer certificate dict)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            return s.version(), s.selected_alpn_protocol(), s.getpeercert()


def sans(cert: dict) -> set[str]:
    return {v for k, v in cert.get("subjectAltName", ()) if k == "DNS"}


def inspect_ctx(certs) -> ssl.SSLContext:
    """Verifies the chain against the test CA but not the name, to look at any served cert."""
    ctx = ssl.create_default_context(cafile=certs.ca_cert)
    ctx.check_hostname = False
    return ctx


# --------------------------------------------------------------------------- SNI


@pytest.mark.parametrize(
    "sni, expected",
    [("a.test", {"a.test"}), ("b.test", {"b.test"}), ("x.wild.test", {"*.wild.test"}),
     ("B.TEST", {"b.test"}),
     # A wildcard certificate covers one label only (RFC 6125): deeper names get the default.
     ("deep.x.wild.test", {"a.test"})],
)
def test_sni_selects_the_matching_certificate(gateway_factory, certs, sni, expected):
    gw = gateway_factory(tls_config(certs))
    _, _, cert = handshake(gw.tls_port, inspect_ctx(certs), sni)
    assert sans(cert) == expected


def test_sni_verified_end_to_end_with_hostname_check(gateway_factory, certs):
    gw = gateway_factory(tls_config(certs))
    for name in ("a.test", "b.test", "api.wild.test"):
        # check_hostname on: the handshake only succeeds with the right certificate.
        version, _, _ = handshake(gw.tls_port, certs.client_context(), name)
        assert version in ("TLSv1.2", "TLSv1.3")


def test_unknown_or_missing_sni_gets_the_first_certificate(gateway_factory, certs):
    gw = gateway_factory(tls_config(certs))
    _, _, cert = handshake(gw.tls_port, inspect_ctx(certs), "unknown.test")
    assert sans(cert) == {"a.test"}
    _, _, cert = handshake(gw.tls_port, inspect_ctx(certs), None)
    assert sans(cert) == {"a.test"}


def test_certificate_hosts_override_names(gateway_factory, certs):
    cfg = {**MOCK, "tls": {"certificates": [certs.a_test.as_config(), certs.b_test.as_config(hosts=["bee.test"])]}}
    gw = gateway_factory(cfg)
    _, _, cert = handshake(gw.tls_port, inspect_ctx(certs), "bee.test")
    assert sans(cert) == {"b.test"}


def test_https_request_through_the_tls_listener(gateway_factory, certs, origin):
    cfg = one_route(origin, tls={"certificates": [certs.localhost.as_config()]})
    gw = gateway_factory(cfg)
    r = httpx.get(gw.tls_url + "/echo/tls", verify=certs.client_context())
    assert r.status_code == 200
    assert origin.last().header("x-forwarded-proto") == "https"
    assert "proto=https" in origin.last().header("forwarded")
    # The plain listener keeps working alongside.
    assert httpx.get(gw.proxy_url + "/echo/plain").status_code == 200
    assert origin.last().header("x-forwarded-proto") == "http"


# --------------------------------------------------------------------------- versions


def _client_hello(legacy_version: int, sni: str = "a.test") -> bytes:
    """A minimal ClientHello offering only `legacy_version` (no supported_versions extension)."""
    suites = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0xC009, 0xC00A, 0x002F, 0x0035]
    name = sni.encode()
    sni_ext = struct.pack("!HB H", len(name) + 3, 0, len(name)) + name
    exts = b"".join([
        struct.pack("!HH", 0x0000, len(sni_ext)) + sni_ext,
        struct.pack("!HHH", 0x000A, 6, 4) + struct.pack("!HH", 0x001D, 0x0017),  # groups
        struct.pack("!HHB", 0x000B, 2, 1) + b"\x00",  # ec_point_formats
        struct.pack("!HHH", 0x000D, 10, 8) + struct.pack("!HHHH", 0x0403, 0x0804, 0x0401, 0x0503),
    ])
    body = (struct.pack("!H", legacy_version) + os.urandom(32) + b"\x00"
            + struct.pack("!H", len(suites) * 2) + b"".join(struct.pack("!H", s) for s in suites)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _first_record(port: int, hello: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(hello)
        head = b""
        while len(head) < 5:
            chunk = s.recv(5 - len(head))
            if not chunk:
                return -1, b""
            head += chunk
        rtype, _, length = struct.unpack("!BHH", head)
        payload = b""
        while len(payload) < min(length, 64):
            chunk = s.recv(length - len(payload))
            if not chunk:
                break
            payload += chunk
        return rtype, payload


def test_tls_1_1_is_refused_with_protocol_version_alert(gateway_factory, certs):
    gw = gateway_factory(tls_config(certs))
    # Control: the same hand-made hello offering TLS 1.2 gets a ServerHello.
    rtype, payload = _first_record(gw.tls_port, _client_hello(0x0303))
    assert rtype == 0x16 and payload[:1] == b"\x02", (rtype, payload)
    rtype, payload = _first_record(gw.tls_port, _client_hello(0x0302))
    assert rtype in (0x15, -1), f"TLS 1.1 hello was answered with record type {rtype}"
    if rtype == 0x15:
        assert payload[1] == 70, payload  # protocol_version


@pytest.mark.parametrize("version, name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted(gateway_factory, certs, version, name):
    gw = gateway_factory(tls_config(certs))
    ctx = certs.client_context()
    ctx.minimum_version = ctx.maximum_version = version
    got, _, _ = handshake(gw.tls_port, ctx, "a.test")
    assert got == name


def test_min_version_1_3_refuses_1_2(gateway_factory, certs):
    gw = gateway_factory(tls_config(certs, min_version="1.3"))
    ctx = certs.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(gw.tls_port, ctx, "a.test")
    ctx = certs.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    assert handshake(gw.tls_port, ctx, "a.test")[0] == "TLSv1.3"


def test_alpn_negotiates_h2_and_http1(gateway_factory, certs):
    gw = gateway_factory(tls_config(certs))
    assert handshake(gw.tls_port, certs.client_context(alpn=["h2", "http/1.1"]), "a.test")[1] == "h2"
    assert handshake(gw.tls_port, certs.client_context(alpn=["http/1.1"]), "a.test")[1] == "http/1.1"
    with httpx.Client(http2=True, verify=certs.client_context()) as c:
        r = c.get(f"https://127.0.0.1:{gw.tls_port}/x", extensions={"sni_hostname": "a.test"})
    assert r.http_version == "HTTP/2" and r.text == "hi\n"


def test_invalid_certificate_file_is_a_config_error(tollgate_bin, tmp_path, certs):
    import json
    import subprocess

    cfg = {**MOCK, "tls": {"certificates": [{"cert": str(tmp_path / "missing.pem"), "key": certs.a_test.key}]}}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([tollgate_bin, "validate", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "missing.pem" in r.stderr


# --------------------------------------------------------------------------- upstream TLS


@pytest.fixture
def https_origin(origin_factory, certs):
    """An HTTPS origin presenting a certificate for localhost/127.0.0.1 from the test CA,
    recording the SNI names clients sent (``.sni``)."""
    ctx = certs.server_context(certs.localhost)
    seen: list = []
    ctx.sni_callback = lambda sock, name, c: seen.append(name)
    o = origin_factory("https-origin", ssl_context=ctx)
    o.sni = seen
    return o


def upstream(origin, host="localhost", **tls) -> dict:
    return one_route(f"https://{host}:{origin.port}", service={"tls": tls} if tls else None)


def test_upstream_tls_verifies_by_default(gateway_factory, https_origin):
    gw = gateway_factory(upstream(https_origin))
    r = httpx.get(gw.proxy_url + "/echo/x", timeout=15)
    assert r.status_code == 502
    assert r.json()["error"]["code"] in ("upstream_unreachable", "upstream_error")
    assert https_origin.requests == []


def test_upstream_tls_with_ca_succeeds(gateway_factory, https_origin, certs):
    gw = gateway_factory(upstream(https_origin, ca=certs.ca_cert))
    r = httpx.get(gw.proxy_url + "/echo/x", timeout=15)
    assert r.status_code == 200
    assert r.json()["origin_name"] == "https-origin"
    assert https_origin.sni == ["localhost"]


def test_upstream_tls_to_ip_address_target_verifies_ip_san(gateway_factory, https_origin, certs):
    gw = gateway_factory(upstream(https_origin, host="127.0.0.1", ca=certs.ca_cert))
    r = httpx.get(gw.proxy_url + "/echo/ip", timeout=15)
    assert r.status_code == 200, r.text


def test_upstream_tls_insecure_skip_verify_succeeds(gateway_factory, https_origin):
    gw = gateway_factory(upstream(https_origin, insecure_skip_verify=True))
    r = httpx.get(gw.proxy_url + "/echo/x", timeout=15)
    assert r.status_code == 200
    assert https_origin.last().path == "/echo/x"


def test_upstream_tls_sni_override(gateway_factory, origin_factory, certs):
    # The origin only has a certificate for a.test, reached by IP address.
    ctx = certs.server_context(certs.a_test)
    seen: list = []
    ctx.sni_callback = lambda sock, name, c: seen.append(name)
    o = origin_factory("a-origin", ssl_context=ctx)
    without = gateway_factory(upstream(o, host="127.0.0.1", ca=certs.ca_cert))
    assert httpx.get(without.proxy_url + "/echo/x", timeout=15).status_code == 502
    with_sni = gateway_factory(upstream(o, host="127.0.0.1", ca=certs.ca_cert, sni="a.test"))
    r = httpx.get(with_sni.proxy_url + "/echo/x", timeout=15)
    assert r.status_code == 200, r.text
    assert "a.test" in seen
    assert [rec.path for rec in o.requests] == ["/echo/x"]


def test_upstream_http2_over_tls_with_alpn(gateway_factory, h2_origin_factory, certs):
    o = h2_origin_factory("h2-tls", ssl_context=certs.server_context(certs.localhost, alpn=["h2"]))
    cfg = one_route(f"https://localhost:{o.port}", service={"protocol": "http2", "tls": {"ca": certs.ca_cert}})
    gw = gateway_factory(cfg)
    r = httpx.post(gw.proxy_url + "/echo/h2tls", content=b"abc", timeout=15)
    assert r.status_code == 200, r.text
    assert r.json()["http_version"] == "2" and r.json()["body_len"] == 3
