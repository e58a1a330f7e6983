"""Drift checks between the code and the user documentation. No gateway needed.

- every field of every configuration wire type (the `pub <field>:` lines of the structs, and the
  fields of the struct-like variants of the enums, in
  crates/tollgate-model/src/{listen,server,tls,certificate,service,api,policy,parse,
  environment,consumer,timestamp}.rs) is documented in docs/configuration.md, written as `name`;
- every metric the binary registers (crates/tollgate-proxy/src/metrics.rs,
  crates/tollgate/src/reload.rs) is documented in docs/operations.md, and every label of a
  labelled metric is listed, as `label`, in that metric's row of the metrics table;
- every error code the proxy and the built-in policies answer with is documented in
  docs/operations.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "crates" / "tollgate-model" / "src"
MODEL_FILES = [
    "listen", "server", "tls", "certificate", "service", "api", "policy", "parse", "environment", "consumer", "timestamp",
]
METRIC_FILES = [
    REPO / "crates" / "tollgate-proxy" / "src" / "metrics.rs",
    REPO / "crates" / "tollgate" / "src" / "reload.rs",
]
ERROR_SOURCES = [
    REPO / "crates" / "tollgate-proxy" / "src",
    REPO / "crates" / "tollgate-plugins" / "src",
    REPO / "crates" / "tollgate-plugin-api" / "src",
]


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def strip_comments(rust: str) -> str:
    """Drops `//` comments (doc comments included) so commented-out code is not read."""
    return re.sub(r"//[^\n]*", "", rust)


def struct_bodies(rust: str) -> list[tuple[str, str]]:
    """(name, body) of every `struct Name { ... }` in a Rust source, braces matched."""
    out = []
    for m in re.finditer(r"\bstruct\s+(\w+)\s*(?:<[^>{]*>)?\s*\{", rust):
        depth, i = 1, m.end()
        while depth and i < len(rust):
            depth += {"{": 1, "}": -1}.get(rust[i], 0)
            i += 1
        out.append((m.group(1), rust[m.end() : i - 1]))
    return out


def enum_variant_fields(rust: str) -> list[tuple[str, str]]:
    """(Enum::Variant, field) for every field of a struct-like enum variant (`Variant { a: T }`)."""
    out = []
    for m in re.finditer(r"\benum\s+(\w+)\s*(?:<[^>{]*>)?\s*\{", rust):
        depth, i = 1, m.end()
        while depth and i < len(rust):
            depth += {"{": 1, "}": -1}.get(rust[i], 0)
            i += 1
        body = rust[m.end() : i - 1]
        body = re.sub(r"#\[[^\]]*\]", "", body)  # attributes hold `Option::is_none` and such
        for variant, fields in re.findall(r"\b(\w+)\s*\{([^{}]*)\}", body):
            for field in re.findall(r"(?<!:)\b(\w+)\s*:(?!:)", fields):
                out.append((f"{m.group(1)}::{variant}", field))
    return out


def model_fields() -> list[tuple[str, str, str]]:
    """(file, struct, field) for every public field of the wire types."""
    fields = []
    for stem in MODEL_FILES:
        source = strip_comments(read(MODEL / f"{stem}.rs"))
        for struct, body in struct_bodies(source):
            for field in re.findall(r"\bpub\s+(\w+)\s*:", body):
                fields.append((f"{stem}.rs", struct, field))
        for variant, field in enum_variant_fields(source):
            fields.append((f"{stem}.rs", variant, field))
    return fields


def registered_metrics() -> list[tuple[str, str]]:
    """(file, name) for every `registry.register("name", ...)`."""
    metrics = []
    for path in METRIC_FILES:
        for name in re.findall(r"\.register\(\s*\"([A-Za-z_:][A-Za-z0-9_:]*)\"", read(path)):
            metrics.append((path.name, name))
    return metrics


def metric_labels() -> list[tuple[str, str, str]]:
    """(file, metric, label) for every label of every labelled metric: a metric registered from
    a `Family<Labels, _>` field has the fields of the `Labels` struct as its labels."""
    out = []
    for path in METRIC_FILES:
        source = strip_comments(read(path))
        label_structs = {
            name: re.findall(r"\b(\w+)\s*:", body) for name, body in struct_bodies(source)
        }
        families = dict(re.findall(r"\b(\w+)\s*:\s*Family<\s*(\w+)", source))
        for metric, field in re.findall(
            r"\.register\(\s*\"(\w+)\"\s*,\s*\"[^\"]*\"\s*,\s*\w+\.(\w+)", source
        ):
            for label in label_structs.get(families.get(field, ""), []):
                out.append((path.name, metric, label))
    return out


def metric_row(metric: str) -> str:
    """The metrics table row of `metric` in docs/operations.md (counters carry `_total`)."""
    for line in OPERATIONS_DOC.splitlines():
        if line.startswith((f"| `{metric}`", f"| `{metric}_total`")):
            return line
    return ""


def error_codes() -> list[tuple[str, str]]:
    """(file, code) for every error code a `GatewayError` is built with outside tests."""
    codes = []
    pattern = re.compile(
        r"GatewayError::(?:downstream|upstream)\(\s*[^,]+,\s*\"([a-z_]+)\"|\bcode:\s*\"([a-z_]+)\""
    )
    for root in ERROR_SOURCES:
        for path in sorted(root.rglob("*.rs")):
            if path.name in ("tests.rs", "testing.rs"):
                continue
            source = strip_comments(read(path))
            source = source.split("#[cfg(test)]", 1)[0]
            for m in pattern.finditer(source):
                codes.append((str(path.relative_to(REPO)), m.group(1) or m.group(2)))
    return codes


CONFIG_DOC = read(REPO / "docs" / "configuration.md")
OPERATIONS_DOC = read(REPO / "docs" / "operations.md")


def test_extraction_finds_the_schema():
    # Guards the checks below against passing vacuously if the sources move or change shape.
    fields = model_fields()
    structs = {s for _, s, _ in fields}
    assert {"Config", "Listen", "ServerConfig", "Service", "Route", "PolicySpec", "Environment",
            "Consumer", "Grant", "Deprecation", "Credential::Jwt"} <= structs, structs
    assert len(fields) >= 60, fields
    assert len(registered_metrics()) >= 8
    labels = {label for _, _, label in metric_labels()}
    assert {"api", "route", "service", "status_class", "result"} <= labels, labels
    assert len({c for _, c in error_codes()}) >= 10


@pytest.mark.parametrize(
    "where,struct,field", model_fields(), ids=lambda v: v if isinstance(v, str) else None
)
def test_every_config_field_is_documented(where, struct, field):
    assert f"`{field}`" in CONFIG_DOC, (
        f"{where}: {struct}.{field} is not documented in docs/configuration.md (as `{field}`)"
    )


@pytest.mark.parametrize("where,name", registered_metrics())
def test_every_metric_is_documented(where, name):
    assert name in OPERATIONS_DOC, f"{where}: metric {name} is not documented in docs/operations.md"


@pytest.mark.parametrize("where,metric,label", metric_labels())
def test_every_metric_label_is_documented(where, metric, label):
    row = metric_row(metric)
    assert row, f"{where}: metric {metric} has no row in the metrics table of docs/operations.md"
    assert f"`{label}`" in row, (
        f"{where}: label {label} of {metric} is not listed in its row of docs/operations.md"
    )


@pytest.mark.parametrize("where,code", sorted(set(error_codes())))
def test_every_error_code_is_documented(where, code):
    assert f"`{code}`" in OPERATIONS_DOC, (
        f"{where}: error code {code} is not documented in docs/operations.md (as `{code}`)"
    )
