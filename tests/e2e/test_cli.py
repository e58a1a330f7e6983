"""The `tollgate` command line: `validate`, `version`, `run` start-up failures, `${VAR}`
substitution, JSON configuration files and the shipped quickstart example."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from support.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def run_cli(bin_path: str, *args: str, env: dict | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([bin_path, *args], capture_output=True, text=True, timeout=timeout, env=env)


def validate(bin_path: str, path: Path) -> subprocess.CompletedProcess:
    return run_cli(bin_path, "validate", "-c", str(path))


def line_col(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and column of the `nth` occurrence of `needle` in `text`."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


VALID = """\
services:
  - name: backend
    targets:
      - url: http://127.0.0.1:9
  - name: hello
    mock:
      body: "hi\\n"
policies:
  - name: response-headers
    config:
      set:
        x-served-by: tollgate
apis:
  - name: main
    routes:
      - name: backend
        paths: ["/backend"]
        service: backend
      - name: hello
        paths: ["= /hello"]
        methods: [GET]
        service: hello
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------------ validate


def test_validate_accepts_a_valid_file_with_exit_0(tollgate_bin, tmp_path):
    p = write(tmp_path, "ok.yaml", VALID)
    r = validate(tollgate_bin, p)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
    assert r.stderr == ""


# Each case: (file name, text, needle locating the error, expected field path, message fragment).
INVALID_CASES = {
    "unknown_field": (
        VALID.replace("        service: backend\n", "        service: backend\n        servce: x\n"),
        "servce:",
        "apis[0].routes[0]",
        "unknown field `servce`",
    ),
    "dangling_service_reference": (
        VALID.replace("service: hello", "service: nowhere"),
        "service: nowhere",
        "apis[0].routes[1].service",
        'no service named "nowhere"',
    ),
    "wrong_type": (
        VALID.replace('paths: ["= /hello"]', "paths: 17"),
        "17",
        "apis[0].routes[1].paths",
        "invalid type",
    ),
    "duplicate_service_name": (
        VALID.replace("  - name: hello\n    mock:", "  - name: backend\n    mock:"),
        "name: backend",  # second occurrence, see nth below
        "services[1].name",
        'duplicate service name "backend"',
    ),
    "invalid_policy_config": (
        VALID.replace("x-served-by: tollgate", "connection: close"),
        "connection:",
        "policies[0].config.set.connection",
        "hop-by-hop",
    ),
    "unknown_policy": (
        VALID.replace("- name: response-headers", "- name: response-headerz"),
        "name: response-headerz",
        "policies[0].name",
        'unknown policy "response-headerz"',
    ),
    "bad_path_pattern": (
        VALID.replace('paths: ["/backend"]', 'paths: ["backend"]'),
        '"backend"',
        "apis[0].routes[0].paths[0]",
        "",
    ),
    "bad_target_url": (
        VALID.replace("http://127.0.0.1:9", "ftp://127.0.0.1:9"),
        "url:",
        "services[0].targets[0].url",
        "must start with http:// or https://",
    ),
}
NTH = {"duplicate_service_name": 1}


@pytest.mark.parametrize("case", sorted(INVALID_CASES))
def test_validate_rejects_invalid_file_with_exit_2_and_file_line_col_path_message(tollgate_bin, tmp_path, case):
    text, needle, path, fragment = INVALID_CASES[case]
    p = write(tmp_path, f"{case}.yaml", text)
    r = validate(tollgate_bin, p)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line, col = line_col(text, needle, NTH.get(case, 0))
    # `file:line:col: field.path: message`, the line and column pointing at the offending key/value
    pattern = re.compile(rf"^{re.escape(str(p))}:{line}:{col}: {re.escape(path)}(\.\S+)?: .*{re.escape(fragment)}", re.M)
    assert pattern.search(r.stderr), f"expected {str(p)}:{line}:{col}: {path}: ...{fragment}... in:\n{r.stderr}"
    assert r.stdout == ""


def test_validate_reports_yaml_syntax_error_with_line_and_column(tollgate_bin, tmp_path):
    text = VALID.replace("        service: hello\n", "        service: hello: again\n")
    p = write(tmp_path, "syntax.yaml", text)
    r = validate(tollgate_bin, p)
    assert r.returncode == 2
    line, _ = line_col(text, "hello: again")
    m = re.search(rf"^{re.escape(str(p))}:(\d+):(\d+): ", r.stderr, re.M)
    assert m, r.stderr
    assert int(m.group(1)) == line, r.stderr
    assert "mapping values are not allowed" in r.stderr


def test_validate_reports_json_errors_with_line_and_column(tollgate_bin, tmp_path):
    doc = {
        "services": [{"name": "m", "mock": {"body": "x"}}],
        "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["/x"], "service": "nope"}]}],
    }
    text = json.dumps(doc, indent=2)
    p = write(tmp_path, "bad.json", text)
    r = validate(tollgate_bin, p)
    assert r.returncode == 2
    line, col = line_col(text, '"service": "nope"')
    assert f"{p}:{line}:{col}: apis[0].routes[0].service: no service named \"nope\"" in r.stderr, r.stderr

    p2 = write(tmp_path, "syntax.json", '{"services": [{"name": "m",, }]}')
    r = validate(tollgate_bin, p2)
    assert r.returncode == 2
    assert re.search(rf"^{re.escape(str(p2))}:1:\d+: ", r.stderr, re.M), r.stderr


def test_validate_reports_every_error_of_a_file_not_just_the_first(tollgate_bin, tmp_path):
    text = VALID.replace("service: hello", "service: nowhere").replace(
        'paths: ["/backend"]', 'paths: ["/backend"]\n        rewrite: {template: "/x/{id}"}'
    )
    p = write(tmp_path, "two.yaml", text)
    r = validate(tollgate_bin, p)
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith(f"{p}:")]
    assert any("apis[0].routes[1].service" in l for l in lines), r.stderr
    assert any("apis[0].routes[0].rewrite.template" in l for l in lines), r.stderr


def test_validate_yaml_type_errors_print_the_field_path_once(tollgate_bin, tmp_path):
    text = VALID.replace("        service: backend\n", "        service: backend\n        servce: x\n")
    p = write(tmp_path, "dup.yaml", text)
    r = validate(tollgate_bin, p)
    assert r.returncode == 2
    first = r.stderr.splitlines()[0]
    # after `file:line:col: ` comes `path: message`; the message must not start with a path again
    _, _, rest = first.partition(f"{p}:")
    message = rest.split(": ", 2)[-1]
    assert not message.startswith("apis[0]"), first


def test_validate_missing_file_exits_2_naming_the_file(tollgate_bin, tmp_path):
    missing = tmp_path / "does-not-exist.yaml"
    r = validate(tollgate_bin, missing)
    assert r.returncode == 2
    assert str(missing) in r.stderr
    assert "cannot read" in r.stderr


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no subcommand
        ["validate"],  # missing --config
        ["bogus-command"],
        ["run", "--no-such-flag", "-c", "x.yaml"],
        ["validate", "-c"],  # option without value
    ],
    ids=["no-subcommand", "validate-without-config", "unknown-subcommand", "unknown-flag", "missing-value"],
)
def test_bad_usage_exits_2_with_usage_on_stderr(tollgate_bin, argv):
    env = {"PATH": "/usr/bin:/bin"}  # no TOLLGATE_CONFIG from the environment
    r = run_cli(tollgate_bin, *argv, env=env)
    assert r.returncode == 2, (argv, r.returncode, r.stderr)
    assert "Usage" in r.stderr or "--help" in r.stderr
    assert r.stdout == ""


def test_help_exits_0_and_lists_the_commands(tollgate_bin):
    r = run_cli(tollgate_bin, "--help")
    assert r.returncode == 0
    for cmd in ("run", "validate", "version"):
        assert cmd in r.stdout
    r = run_cli(tollgate_bin, "run", "--help")
    assert r.returncode == 0
    assert "--config" in r.stdout and "--no-watch" in r.stdout and "--log-level" in r.stdout


def test_version_prints_the_version(tollgate_bin):
    r = run_cli(tollgate_bin, "version")
    assert r.returncode == 0
    assert re.fullmatch(r"tollgate \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    r2 = run_cli(tollgate_bin, "--version")
    assert r2.returncode == 0
    assert r2.stdout == r.stdout


def test_validate_reads_config_path_from_tollgate_config_env(tollgate_bin, tmp_path):
    p = write(tmp_path, "ok.yaml", VALID)
    r = run_cli(tollgate_bin, "validate", env={"PATH": "/usr/bin:/bin", "TOLLGATE_CONFIG": str(p)})
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------ run failures


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _run_and_wait(bin_path: str, config: Path, timeout: float = 15) -> tuple[int, str]:
    """Runs `tollgate run` and waits for it to exit by itself; returns (exit code, stderr)."""
    proc = subprocess.Popen([bin_path, "run", "-c", str(config), "--no-watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def test_run_with_invalid_config_exits_2_without_listening(tollgate_bin, tmp_path):
    proxy, admin = free_port(), free_port()
    text = f"listen:\n  proxy: 127.0.0.1:{proxy}\n  admin: 127.0.0.1:{admin}\n" + VALID.replace(
        "service: hello", "service: nowhere")
    p = write(tmp_path, "bad.yaml", text)
    # Nothing holds the ports: if the gateway bound them before failing, the probe below would
    # see a listener while it runs.
    proc = subprocess.Popen([tollgate_bin, "run", "-c", str(p), "--no-watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_listening = False
    try:
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            seen_listening |= _listening(proxy) or _listening(admin)
            time.sleep(0.01)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    line, col = line_col(text, "service: nowhere")
    assert f"{p}:{line}:{col}: apis[0].routes[1].service: no service named \"nowhere\"" in err, err
    assert "listening" not in err
    assert not seen_listening
    assert out == ""


def test_run_with_missing_config_file_exits_2(tollgate_bin, tmp_path):
    code, err = _run_and_wait(tollgate_bin, tmp_path / "nope.yaml")
    assert code == 2
    assert "nope.yaml" in err and "cannot read" in err


@pytest.mark.parametrize("which", ["proxy", "admin"])
def test_run_exits_1_with_clear_message_when_port_is_in_use(tollgate_bin, tmp_path, which):
    ports = {"proxy": free_port(), "admin": free_port()}
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports[which]))
    blocker.listen(1)
    try:
        text = f"listen:\n  proxy: 127.0.0.1:{ports['proxy']}\n  admin: 127.0.0.1:{ports['admin']}\n" + VALID
        p = write(tmp_path, "busy.yaml", text)
        code, err = _run_and_wait(tollgate_bin, p)
    finally:
        blocker.close()
    assert code == 1, err
    assert f"cannot listen on 127.0.0.1:{ports[which]}" in err, err
    assert "in use" in err.lower(), err


def test_run_with_invalid_log_level_exits_2(tollgate_bin, tmp_path):
    p = write(tmp_path, "ok.yaml", f"listen:\n  proxy: 127.0.0.1:{free_port()}\n  admin: 127.0.0.1:{free_port()}\n" + VALID)
    proc = subprocess.run([tollgate_bin, "run", "-c", str(p), "--no-watch", "--log-level", "[[nonsense"],
                          capture_output=True, text=True, timeout=15, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "log level" in proc.stderr


# ------------------------------------------------------------------------------------ ${VAR}

ENV_CONFIG = """\
listen:
  proxy: "127.0.0.1:${TG_TEST_PROXY_PORT}"
services:
  - name: greeting
    mock:
      headers:
        x-default: "${TG_TEST_UNSET_VAR:-fallback-value}"
        x-empty: "${TG_TEST_EMPTY_VAR:-used-when-empty}"
        x-dollar: "cost: $$5"
      body: "${TG_TEST_GREETING}"
apis:
  - name: main
    routes:
      - name: greeting
        paths: ["= /greeting"]
        service: greeting
"""


def test_env_var_and_default_substitution_in_config(gateway_factory):
    port = free_port()
    gw = gateway_factory(ENV_CONFIG, env={
        "TG_TEST_PROXY_PORT": str(port),
        "TG_TEST_GREETING": "hello from the environment",
        "TG_TEST_EMPTY_VAR": "",
    })
    assert gw.proxy_port == port
    r = httpx.get(f"http://127.0.0.1:{port}/greeting", timeout=5)
    assert r.status_code == 200
    assert r.text == "hello from the environment"
    assert r.headers["x-default"] == "fallback-value"
    assert r.headers["x-empty"] == "used-when-empty"
    assert r.headers["x-dollar"] == "cost: $5"


def test_unset_env_var_without_default_is_a_config_error_naming_it(tollgate_bin, tmp_path):
    p = write(tmp_path, "env.yaml", ENV_CONFIG)
    r = run_cli(tollgate_bin, "validate", "-c", str(p), env={"PATH": "/usr/bin:/bin", "TG_TEST_PROXY_PORT": "1"})
    assert r.returncode == 2
    assert "TG_TEST_GREETING" in r.stderr
    assert str(p) in r.stderr


def test_unset_env_var_error_uses_file_line_col_format(tollgate_bin, tmp_path):
    p = write(tmp_path, "env.yaml", ENV_CONFIG)
    r = run_cli(tollgate_bin, "validate", "-c", str(p), env={"PATH": "/usr/bin:/bin", "TG_TEST_PROXY_PORT": "1"})
    line, _ = line_col(ENV_CONFIG, "${TG_TEST_GREETING}")
    assert re.match(rf"{re.escape(str(p))}:{line}:\d+: .*TG_TEST_GREETING", r.stderr), r.stderr


def test_env_reference_in_a_yaml_comment_is_not_substituted(tollgate_bin, tmp_path):
    text = "# the token comes from ${TG_TEST_NOT_SET_ANYWHERE} in production\n" + VALID
    p = write(tmp_path, "commented.yaml", text)
    r = run_cli(tollgate_bin, "validate", "-c", str(p), env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------------ JSON files


def test_json_config_file_runs_and_serves(tollgate_bin, tmp_path):
    proxy, admin = free_port(), free_port()
    doc = {
        "listen": {"proxy": f"127.0.0.1:{proxy}", "admin": f"127.0.0.1:{admin}"},
        "services": [{"name": "m", "mock": {"status": 202, "body": "from json\n",
                                              "headers": {"x-format": "json"}}}],
        "apis": [{"name": "a", "routes": [{"name": "r", "paths": ["= /j"], "service": "m"}]}],
    }
    p = write(tmp_path, "tollgate.json", json.dumps(doc))
    assert validate(tollgate_bin, p).returncode == 0
    proc = subprocess.Popen([tollgate_bin, "run", "-c", str(p), "--no-watch"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{admin}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.05)
        r = httpx.get(f"http://127.0.0.1:{proxy}/j", timeout=5)
        assert r.status_code == 202
        assert r.text == "from json\n"
        assert r.headers["x-format"] == "json"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------ quickstart


def test_quickstart_example_runs_and_echoes_requests(gateway_factory, tollgate_bin):
    text = (REPO / "examples" / "quickstart.yaml").read_text()
    assert all(f"127.0.0.1:{p}" in text for p in (8080, 8081, 8082))
    proxy, admin, status = free_port(), free_port(), free_port()
    text = (text.replace("127.0.0.1:8080", f"127.0.0.1:{proxy}")
            .replace("127.0.0.1:8081", f"127.0.0.1:{admin}")
            .replace("127.0.0.1:8082", f"127.0.0.1:{status}"))
    gw = gateway_factory(text)
    assert gw.proxy_port == proxy

    with httpx.Client(base_url=gw.proxy_url, timeout=5) as c:
        r = c.get("/echo/hello?x=1", headers={"x-demo": "yes"})
        assert r.status_code == 200
        assert r.headers["x-served-by"] == "tollgate"
        assert r.headers.get("x-request-id")
        body = r.json()
        assert body["method"] == "GET"
        assert body["path"] == "/echo/hello"
        assert body["query"] == "x=1"
        assert body["headers"]["x-demo"] == "yes"
        assert body["route"] == "echo"

        r = c.get("/hello")
        assert r.status_code == 200
        assert r.text == "Hello from Tollgate!\n"
        assert r.headers["content-type"].startswith("text/plain")

        r = c.get("/api/v1/users/42")
        assert r.status_code == 200
        assert r.json()["path"] == "/internal/users/42"

    # curl, as the example's comments say
    curl = subprocess.run(["curl", "-sS", "-i", f"{gw.proxy_url}/echo/hello?x=1"], capture_output=True, text=True, timeout=10)
    if curl.returncode == 0:
        assert curl.stdout.startswith("HTTP/1.1 200")
        assert '"path": "/echo/hello"' in curl.stdout
    # metrics without a token on the status listener; the admin listener wants one
    m = httpx.get(f"http://127.0.0.1:{status}/metrics", timeout=5)
    assert m.status_code == 200 and "tollgate_requests_total" in m.text
    refused = httpx.get(f"{gw.admin_url}/metrics", timeout=5)
    assert refused.status_code == 401 and "status listener" in refused.json()["error"]["message"]
