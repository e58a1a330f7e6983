"""The admin API holds up under schemathesis: a real gateway in store mode (SQLite in a data
directory), schemathesis generating requests from the served OpenAPI document
(``/api/v1/openapi.json``) with an admin token, and no response that is a server error or
violates the document (status codes, content types, body schemas).

The run is bounded (examples per operation and a fixed seed) so that it takes about a minute;
set ``TOLLGATE_SCHEMATHESIS_EXAMPLES`` for a longer one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
])


# CPython 3.11 can raise "SystemError: AST constructor recursion depth mismatch" while
# hypothesis parses a lambda's source only to describe a strategy (a crash of the tool, not a
# finding about the API). The runner lets such a description fail quietly, then runs the CLI.
RUNNER = """
import sys
try:
    from hypothesis.internal import lambda_sources

    _describe = lambda_sources.lambda_description

    def _describe_or_not(f):
        try:
            return _describe(f)
        except SystemError:
            return "lambda"

    lambda_sources.lambda_description = _describe_or_not
except ImportError:
    pass
from schemathesis.cli import schemathesis

sys.exit(schemathesis(prog_name="schemathesis"))
"""


def schemathesis_cli(tmp_path: Path) -> list[str]:
    """schemathesis from this interpreter's environment (the test venv)."""
    if importlib.util.find_spec("schemathesis") is None:
        pytest.fail("schemathesis is not installed: pip install -r tests/requirements.txt", pytrace=False)
    runner = tmp_path / "run_schemathesis.py"
    runner.write_text(RUNNER)
    return [sys.executable, str(runner)]


def seed(gw) -> None:
    """A few objects, so that reads of existing objects and lifecycle calls are exercised."""
    calls = [
        ("POST", "/api/v1/environments", {"name": "prod"}),
        ("POST", "/api/v1/services", {"name": "svc", "targets": [{"url": "http://127.0.0.1:9"}]}),
        ("POST", "/api/v1/apis", {"name": "orders", "version": "1",
                                  "routes": [{"name": "r", "paths": ["/orders"], "service": "svc"}]}),
        ("POST", "/api/v1/apis/orders/versions/1/publish", {"environment": "prod"}),
        ("POST", "/api/v1/consumers", {"name": "app", "tags": ["t"],
                                       "credentials": [{"type": "key-auth", "id": "k", "key": "secret-key"}]}),
    ]
    for method, path, body in calls:
        r = gw.api(method, path, json=body)
        assert r.status_code == 201, f"{method} {path}: {r.status_code} {r.text}"


def test_admin_api_holds_up_under_schemathesis(store_gateway_factory, tmp_path: Path) -> None:
    gw = store_gateway_factory()
    seed(gw)
    examples = os.environ.get("TOLLGATE_SCHEMATHESIS_EXAMPLES", "12")
    cmd = [
        *schemathesis_cli(tmp_path), "run", f"{gw.admin_url}/api/v1/openapi.json",
        "--url", gw.admin_url,
        "--header", f"Authorization: Bearer {gw.token}",
        "--checks", CHECKS,
        "--max-examples", examples,
        "--seed", "20261127",
        "--workers", "2",
        "--request-timeout", "20",
        # Revoking tokens would only lock the run out of the API (401s, documented).
        "--exclude-operation-id", "delete_token",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]
    env = dict(os.environ, NO_COLOR="1", SCHEMATHESIS_TELEMETRY="false")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=280, env=env, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"schemathesis found problems (exit {done.returncode}):\n{output[-12000:]}\n"
        f"--- gateway stderr ---\n{gw.stderr_text()[-4000:]}"
    )
    # The gateway survived the run and still serves the API.
    assert gw.api("GET", "/api/v1/status").status_code == 200
    assert "Server error" not in output
