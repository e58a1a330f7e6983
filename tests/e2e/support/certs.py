"""A test CA and server certificates, written as PEM files."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertPair:
    """A leaf certificate (chain file, leaf first) and its private key, as PEM file paths."""

    cert: str
    key: str
    names: tuple[str, ...]

    def as_config(self, hosts: list[str] | None = None) -> dict:
        """The entry for `tls.certificates` in a gateway configuration."""
        d: dict = {"cert": self.cert, "key": self.key}
        if hosts is not None:
            d["hosts"] = hosts
        return d


class Certs:
    """``ca_cert``: the CA certificate (PEM path). Leaves: ``a_test`` (a.test),
    ``b_test`` (b.test), ``wild_test`` (*.wild.test), ``localhost`` (localhost, 127.0.0.1;
    for HTTPS origins). ``by_name[name]`` gives the same pairs by their first name."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.ca = trustme.CA(organization_name="Tollgate Test CA")
        self.ca_cert = str(directory / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_cert)
        self.by_name: dict[str, CertPair] = {}
        self.a_test = self._issue("a", "a.test")
        self.b_test = self._issue("b", "b.test")
        self.wild_test = self._issue("wild", "*.wild.test")
        self.localhost = self._issue("localhost", "localhost", "127.0.0.1")

    def _issue(self, stem: str, *names: str) -> CertPair:
        leaf = self.ca.issue_cert(*names)
        cert = str(self.dir / f"{stem}.crt.pem")
        key = str(self.dir / f"{stem}.key.pem")
        leaf.private_key_pem.write_to_path(key)
        with open(cert, "wb") as f:
            for blob in leaf.cert_chain_pems:
                f.write(blob.bytes())
        pair = CertPair(cert=cert, key=key, names=tuple(names))
        self.by_name[names[0]] = pair
        return pair

    def client_context(self, *, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A client context that trusts the test CA (and only it)."""
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx

    def server_context(self, pair: CertPair | None = None, *, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A server context presenting `pair` (default: ``localhost``)."""
        pair = pair or self.localhost
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pair.cert, pair.key)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx
