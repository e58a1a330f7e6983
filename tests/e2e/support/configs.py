"""Small builders for gateway configurations (plain dicts, the wire format)."""

from __future__ import annotations

from typing import Any, Iterable


def targets_of(targets: Any) -> list[dict]:
    """A target list from a URL, an object with ``.url``, or a list of either / of dicts."""
    if isinstance(targets, (str, dict)) or hasattr(targets, "url"):
        targets = [targets]
    out = []
    for t in targets:
        if isinstance(t, dict):
            out.append(t)
        elif hasattr(t, "url"):
            out.append({"url": t.url})
        else:
            out.append({"url": str(t)})
    return out


def one_route(
    targets: Any,
    paths: Iterable[str] = ("/",),
    *,
    route: dict | None = None,
    service: dict | None = None,
    api: dict | None = None,
    server: dict | None = None,
    tls: dict | None = None,
    policies: list | None = None,
) -> dict:
    """A configuration with one service (``svc``), one API (``api``) and one route (``r``)."""
    cfg: dict = {
        "services": [{"name": "svc", "targets": targets_of(targets), **(service or {})}],
        "apis": [
            {
                "name": "api",
                **(api or {}),
                "routes": [{"name": "r", "paths": list(paths), "service": "svc", **(route or {})}],
            }
        ],
    }
    if server:
        cfg["server"] = server
    if tls:
        cfg["tls"] = tls
    if policies:
        cfg["policies"] = policies
    return cfg
