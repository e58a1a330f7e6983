"""OpenAPI import and export against a running gateway in store mode: a document uploaded
through the admin API (and the CLI) becomes a draft version; once published, its OpenAPI 3.1
document, fetched with `tollgate openapi export`, carries the environment's server URL and
validates with openapi-spec-validator."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from openapi_spec_validator import validate

PETSTORE = Path(__file__).resolve().parents[2] / "crates/tollgate-openapi/tests/data/petstore.yaml"


def setup(gw) -> None:
    for env in ({"name": "prod", "hosts": ["pets.test"]}, {"name": "test", "hosts": ["pets.qa.test"]}):
        r = gw.api("POST", "/api/v1/environments", json=env)
        assert r.status_code == 201, r.text
    r = gw.api("POST", "/api/v1/services",
               json={"name": "petstore", "mock": {"status": 200, "body": "[]"}})
    assert r.status_code == 201, r.text


def test_import_publish_and_export_a_valid_openapi_31_document(store_gateway_factory, tmp_path):
    gw = store_gateway_factory()
    setup(gw)

    # Import through the admin API: a draft version with one route per operation.
    r = gw.api("POST", "/api/v1/apis/import", params={"service": "petstore"},
               content=PETSTORE.read_text(), headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/v1/apis/swagger-petstore/versions/1.0.0"
    created = r.json()
    assert [route["name"] for route in created["api"]["routes"]] == [
        "listPets", "createPets", "showPetById"]
    assert isinstance(created["warnings"], list)

    # Publish to prod: the routes serve there under the document's base path.
    r = gw.api("POST", "/api/v1/apis/swagger-petstore/versions/1.0.0/publish",
               json={"environment": "prod"}, token=gw.token)
    assert r.status_code == 201, r.text
    gw.wait_live(lambda: httpx.get(gw.proxy_url + "/v1/pets", headers={"Host": "pets.test"},
                                   timeout=5).status_code == 200)

    # Export with the CLI: the live version in prod, its host as the server.
    out = tmp_path / "petstore.json"
    done = gw.cli("openapi", "export", "swagger-petstore", "--env", "prod", "-f", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "https://pets.test/v1"}]
    assert doc["info"]["title"] == "Swagger Petstore"
    assert doc["info"]["license"] == {"name": "MIT"}
    assert set(doc["paths"]) == {"/pets", "/pets/{petId}"}

    # One version by label, with a server given; to standard output.
    done = gw.cli("openapi", "export", "swagger-petstore", "--api-version", "1.0.0",
                  "--server", "https://api.example.com")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    validate(doc)
    assert doc["servers"] == [{"url": "https://api.example.com/v1"}]

    # Not live in test: 404, exit code 2.
    done = gw.cli("openapi", "export", "swagger-petstore", "--env", "test")
    assert done.returncode == 2 and "404" in done.stderr, done.stderr


def test_cli_upload_and_group_export(store_gateway_factory, tmp_path):
    gw = store_gateway_factory()
    setup(gw)
    done = gw.cli("openapi", "import", str(PETSTORE), "--service", "petstore", "--upload",
                  "--name", "pets", "--api-version", "2", "--auth-policies")
    assert done.returncode == 0, done.stderr
    assert "created draft pets version 2 (3 routes)" in done.stdout, done.stdout
    api = gw.api("GET", "/api/v1/apis/pets/versions/2").json()
    api["group"] = "shop"
    r = gw.api("PUT", "/api/v1/apis/pets/versions/2", json=api)
    assert r.status_code == 200, r.text
    r = gw.api("POST", "/api/v1/apis", json={
        "name": "orders", "version": "1", "group": "shop", "base_path": "/v1",
        "routes": [{"name": "list-orders", "paths": ["= /orders"], "methods": ["GET"],
                    "service": "petstore"}]})
    assert r.status_code == 201, r.text
    for name, version in (("pets", "2"), ("orders", "1")):
        done = gw.cli("api", "publish", name, version, "--env", "prod")
        assert done.returncode == 0, done.stderr

    done = gw.cli("openapi", "export", "shop", "--group", "--env", "prod")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    validate(doc)
    assert doc["info"]["title"] == "shop"
    assert doc["servers"] == [{"url": "https://pets.test/v1"}]
    assert {"/orders", "/pets", "/pets/{petId}"} <= set(doc["paths"])

    # A bad upload is refused with the place in the document; nothing is written.
    revision = gw.api("GET", "/api/v1/status").json()["revision"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths:\n  /x:\n    get:\n"
                   "      parameters:\n        - $ref: '#/components/parameters/Nope'\n"
                   "      responses: {'200': {description: ok}}\n")
    done = gw.cli("openapi", "import", str(bad), "--service", "petstore", "--upload")
    assert done.returncode == 2, done.stderr
    assert "400" in done.stderr and "/paths/~1x/get/parameters/0" in done.stderr, done.stderr
    assert gw.api("GET", "/api/v1/status").json()["revision"] == revision
