"""Certificates managed through the admin API (store mode): created, replaced and deleted
certificates are served by SNI on the next snapshot, without a restart; bad ones are refused
with the field named and nothing written; the private key never appears in answers, exports,
the audit log or the logs. Also: named certificates with inline PEM in file mode."""

from __future__ import annotations

import datetime
import hashlib
import socket
import ssl

import httpx
import pytest
import trustme

from support.ports import free_port

MOCK = {
    "services": [{"name": "hello", "mock": {"status": 200, "body": "hi\n"}}],
    "apis": [{"name": "api", "routes": [{"name": "r", "paths": ["/"], "service": "hello"}]}],
}


class Leaf:
    """A leaf certificate issued by `ca` for `names`, as PEM text."""

    def __init__(self, ca: trustme.CA, *names: str, **dates: datetime.datetime) -> None:
        issued = ca.issue_cert(*names, **dates)
        self.cert = "".join(b.bytes().decode() for b in issued.cert_chain_pems)
        self.key = issued.private_key_pem.bytes().decode()
        der = ssl.PEM_cert_to_DER_cert(issued.cert_chain_pems[0].bytes().decode())
        self.fingerprint = hashlib.sha256(der).hexdigest()

    def body(self, name: str, **extra) -> dict:
        return {"name": name, "cert": self.cert, "key": self.key, **extra}

    def key_lines(self) -> list[str]:
        """The base64 lines of the private key: none may appear anywhere."""
        return [line for line in self.key.splitlines() if line and not line.startswith("-----")]


def served_fingerprint(port: int, ca: trustme.CA, sni: str) -> str | None:
    """SHA-256 of the certificate served for `sni` (verified against `ca`), None when the
    handshake fails."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as s:
                return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
    except (ssl.SSLError, OSError):
        return None


def assert_keyless(text: str, *leaves: Leaf) -> None:
    assert "PRIVATE KEY" not in text
    for leaf in leaves:
        for line in leaf.key_lines():
            assert line not in text, "a private key leaked"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Tollgate Certificates Test CA")


@pytest.fixture
def tls_gateway(store_gateway_factory):
    tls_port = free_port()
    gw = store_gateway_factory(args=("--listen-tls", f"127.0.0.1:{tls_port}"))
    gw.tls_port = tls_port
    return gw


def test_certificate_lifecycle_through_the_admin_api_is_live_without_restart(tls_gateway, ca, tmp_path):
    gw = tls_gateway
    first, second = Leaf(ca, "a.test", "www.a.test"), Leaf(ca, "a.test")
    # The TLS listener is bound (--listen-tls) but has nothing to serve yet.
    assert served_fingerprint(gw.tls_port, ca, "a.test") is None

    created = gw.api("POST", "/api/v1/certificates", json=first.body("site-a", tags=["edge"]))
    assert created.status_code == 201, created.text
    assert_keyless(created.text, first)
    assert created.json()["fingerprint_sha256"] == first.fingerprint
    assert created.json()["served_names"] == ["a.test", "www.a.test"]
    gw.wait_live(lambda: served_fingerprint(gw.tls_port, ca, "a.test") == first.fingerprint)
    assert served_fingerprint(gw.tls_port, ca, "www.a.test") == first.fingerprint

    # Replace with a new certificate and key (If-Match): the new one is served.
    etag = gw.api("GET", "/api/v1/certificates/site-a").headers["etag"]
    replaced = gw.api("PUT", "/api/v1/certificates/site-a", json=second.body("site-a"),
                      headers={"If-Match": etag})
    assert replaced.status_code == 200, replaced.text
    gw.wait_live(lambda: served_fingerprint(gw.tls_port, ca, "a.test") == second.fingerprint)

    # Bad input: 400 naming the field, nothing written, the current certificate still served.
    revision = gw.api("GET", "/api/v1/status").json()["revision"]
    bad = gw.api("PUT", "/api/v1/certificates/site-a",
                 json={"name": "site-a", "cert": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
                       "key": second.key})
    assert bad.status_code == 400, bad.text
    assert bad.json()["error"]["field"] == "cert"
    mismatch = gw.api("PUT", "/api/v1/certificates/site-a",
                      json={"name": "site-a", "cert": first.cert, "key": second.key})
    assert mismatch.status_code == 400, mismatch.text
    assert mismatch.json()["error"]["field"] == "key"
    assert "does not match" in mismatch.json()["error"]["message"]
    assert_keyless(bad.text + mismatch.text, first, second)
    assert gw.api("GET", "/api/v1/status").json()["revision"] == revision
    assert served_fingerprint(gw.tls_port, ca, "a.test") == second.fingerprint

    # The key is nowhere: reads, lists, export, audit log, logs.
    texts = [gw.api("GET", p).text for p in (
        "/api/v1/certificates/site-a", "/api/v1/certificates", "/api/v1/config",
        "/api/v1/audit?kind=certificate")]
    export = gw.cli("config", "export")
    assert export.returncode == 0, export.stderr
    texts.append(export.stdout)
    for text in texts:
        assert_keyless(text, first, second)
    assert "key_encrypted: v1:" in export.stdout

    # The export applies back unchanged.
    path = tmp_path / "export.yaml"
    path.write_text(export.stdout)
    again = gw.cli("config", "apply", "-f", str(path))
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout
    assert gw.api("GET", "/api/v1/status").json()["revision"] == revision

    # A restart serves it from the store (the key is decrypted with the node's key file).
    gw.stop()
    gw.start()
    assert served_fingerprint(gw.tls_port, ca, "a.test") == second.fingerprint

    # Delete: no certificate left, handshakes fail.
    deleted = gw.api("DELETE", "/api/v1/certificates/site-a")
    assert deleted.status_code == 204, deleted.text
    gw.wait_live(lambda: served_fingerprint(gw.tls_port, ca, "a.test") is None)
    assert_keyless(gw.stderr_text(), first, second)


def _ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_certificates_are_chosen_by_sni_and_conflicts_are_refused(tls_gateway, ca):
    gw = tls_gateway
    a, b, wild = Leaf(ca, "a.test"), Leaf(ca, "b.test"), Leaf(ca, "*.wild.test")
    for name, leaf in (("a", a), ("b", b), ("wild", wild)):
        r = gw.api("POST", "/api/v1/certificates", json=leaf.body(name))
        assert r.status_code == 201, r.text
    gw.wait_live(lambda: served_fingerprint(gw.tls_port, ca, "x.wild.test") == wild.fingerprint)
    assert served_fingerprint(gw.tls_port, ca, "a.test") == a.fingerprint
    assert served_fingerprint(gw.tls_port, ca, "b.test") == b.fingerprint

    # Another certificate for b.test: a conflict, refused with the field.
    r = gw.api("POST", "/api/v1/certificates", json=Leaf(ca, "b.test").body("b2"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "cert"
    assert "also served by certificate \"b\"" in r.json()["error"]["message"]

    # A request over TLS reaches the router.
    apply = gw.api("POST", "/api/v1/services", json={"name": "hello", "mock": {"status": 200, "body": "hi\n"}})
    assert apply.status_code == 201, apply.text
    r = gw.api("POST", "/api/v1/apis", json={"name": "api", "version": "1", "routes": [
        {"name": "r", "paths": ["/"], "service": "hello"}]})
    assert r.status_code == 201, r.text
    assert gw.cli("api", "publish", "api", "1", "--env", "prod").returncode == 0

    def hello() -> bool:
        with httpx.Client(verify=_ctx(ca), timeout=5) as client:
            try:
                resp = client.get(f"https://127.0.0.1:{gw.tls_port}/", headers={"Host": "b.test"},
                                  extensions={"sni_hostname": "b.test"})
            except httpx.HTTPError:
                return False
            return resp.status_code == 200 and resp.text == "hi\n"

    gw.wait_live(hello, timeout=10)


def test_file_mode_serves_named_certificates_with_inline_pem(gateway_factory, ca):
    leaf = Leaf(ca, "inline.test")
    config = {**MOCK, "certificates": [{"name": "inline", "cert": leaf.cert, "key": "${INLINE_KEY}"}]}
    gw = gateway_factory(config, env={"INLINE_KEY": leaf.key})
    assert gw.tls_port is not None
    assert served_fingerprint(gw.tls_port, ca, "inline.test") == leaf.fingerprint
    assert_keyless(gw.stderr_text(), leaf)


def test_expired_certificates_are_refused_when_written_but_never_block_a_start(tls_gateway, ca, gateway_factory):
    past = {"not_before": datetime.datetime(2020, 1, 1), "not_after": datetime.datetime(2021, 1, 1)}
    old = Leaf(ca, "old.test", **past)
    r = tls_gateway.api("POST", "/api/v1/certificates", json=old.body("old"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "cert"
    assert "expired" in r.json()["error"]["message"]
    assert tls_gateway.api("GET", "/api/v1/certificates").json()["items"] == []

    # A file with an expired certificate still starts: the certificate is served, with a warning.
    gw = gateway_factory({**MOCK, "certificates": [{"name": "old", "cert": old.cert, "key": old.key}]})
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", gw.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="old.test") as s:
            assert hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest() == old.fingerprint
    gw.wait_for_log("the certificate expired")
    assert_keyless(gw.stderr_text() + gw.stdout_text(), old)
