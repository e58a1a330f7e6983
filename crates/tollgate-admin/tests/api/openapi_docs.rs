//! OpenAPI documents of managed APIs: import an uploaded document as a draft version, export a
//! version, the version live in an environment, or a group, as OpenAPI 3.1.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{Harness, service};

const PETSTORE: &str = include_str!("../../../tollgate-openapi/tests/data/petstore.yaml");
const IMPORT: &str = "/api/v1/apis/import?service=petstore";

/// A store with environments `prod` (bound to api.example.com) and `test`, and the service
/// `petstore`.
async fn harness() -> Harness {
    let h = Harness::new().await;
    h.post(
        "/api/v1/environments",
        json!({"name": "prod", "hosts": ["*.example.com", "api.example.com"]}),
    )
    .await
    .ok(201);
    h.post(
        "/api/v1/environments",
        json!({"name": "test", "hosts": ["api.test.example.com"]}),
    )
    .await
    .ok(201);
    h.post("/api/v1/services", service("petstore"))
        .await
        .ok(201);
    h
}

async fn import_petstore(h: &Harness) -> Value {
    h.call("POST", IMPORT)
        .raw("application/yaml", PETSTORE)
        .send()
        .await
        .ok(201)
        .body
}

async fn publish(h: &Harness, name: &str, version: &str, environment: &str) {
    h.call(
        "POST",
        &format!("/api/v1/apis/{name}/versions/{version}/publish"),
    )
    .token(&h.operator.clone())
    .json(json!({"environment": environment}))
    .send()
    .await
    .ok(201);
}

/// The structure OpenAPI 3.1 requires of what export writes: version, info, paths starting
/// with `/`, operations with responses, path parameters declared, security requirements naming
/// defined schemes.
fn assert_openapi_31(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0", "{doc:#}");
    assert!(doc["info"]["title"].is_string(), "{doc:#}");
    assert!(doc["info"]["version"].is_string(), "{doc:#}");
    let schemes: BTreeSet<&str> = doc["components"]["securitySchemes"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let check_security = |security: &Value| {
        for requirement in security.as_array().unwrap() {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains(name.as_str()), "undefined scheme {name}");
            }
        }
    };
    if let Some(security) = doc.get("security") {
        check_security(security);
    }
    let paths = doc["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path}");
        let params: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|p| p.split('}').next())
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(
                [
                    "get", "put", "post", "delete", "options", "head", "patch", "trace"
                ]
                .contains(&method.as_str()),
                "{method}"
            );
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}: responses"
            );
            for name in &params {
                assert!(
                    op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["in"] == "path" && p["name"] == *name && p["required"] == true),
                    "{method} {path}: path parameter {name} not declared"
                );
            }
            if let Some(security) = op.get("security") {
                check_security(security);
            }
        }
    }
}

#[tokio::test]
async fn importing_petstore_creates_a_draft_version_with_its_routes() {
    let h = harness().await;
    let reply = h
        .call("POST", IMPORT)
        .raw("application/yaml", PETSTORE)
        .send()
        .await
        .ok(201);
    assert_eq!(
        reply.header("location"),
        "/api/v1/apis/swagger-petstore/versions/1.0.0"
    );
    assert!(!reply.etag().is_empty());
    let api = &reply.body["api"];
    assert_eq!(api["name"], "swagger-petstore");
    assert_eq!(api["base_path"], "/v1");
    let routes: Vec<&str> = api["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(routes, ["listPets", "createPets", "showPetById"]);
    assert_eq!(api["routes"][0]["service"], "petstore");
    assert!(api["routes"][0]["operation"]["responses"].is_object());
    assert_eq!(api["openapi"]["info"]["license"]["name"], "MIT");
    assert!(reply.body["warnings"].is_array());

    // A draft like any other: editable, live nowhere.
    let versions = h
        .get("/api/v1/apis/swagger-petstore/versions")
        .await
        .ok(200);
    assert_eq!(versions.body["items"][0]["published"], false);
    assert_eq!(versions.body["items"][0]["live_in"], json!([]));
    let stored = h
        .get("/api/v1/apis/swagger-petstore/versions/1.0.0")
        .await
        .ok(200);
    assert_eq!(stored.body, *api);

    // JSON works too; options override the document.
    let again = h
        .call(
            "POST",
            "/api/v1/apis/import?service=petstore&name=pets&version=2&base_path=/pets-api&auth_policies=true",
        )
        .raw("application/json", &yaml_to_json(PETSTORE))
        .send()
        .await
        .ok(201);
    assert_eq!(again.body["api"]["name"], "pets");
    assert_eq!(again.body["api"]["version"], "2");
    assert_eq!(again.body["api"]["base_path"], "/pets-api");
}

fn yaml_to_json(text: &str) -> String {
    serde_yaml_ng::from_str::<Value>(text).unwrap().to_string()
}

#[tokio::test]
async fn a_bad_document_is_refused_with_its_json_pointer_and_nothing_is_written() {
    let h = harness().await;
    let dangling = PETSTORE.replace(
        "$ref: \"#/components/schemas/Pets\"",
        "$ref: \"#/components/schemas/Nope\"",
    );
    assert_ne!(dangling, PETSTORE);
    let reply = h
        .refused(
            h.call("POST", IMPORT).raw("application/yaml", &dangling),
            400,
            "invalid_body",
        )
        .await;
    assert!(
        reply
            .message()
            .contains("/paths/~1pets/get/responses/200/content/application~1json/schema"),
        "{reply:?}"
    );
    assert!(reply.field().starts_with("/paths/~1pets/get"), "{reply:?}");

    // Not YAML at all; not OpenAPI 3; a wrong media type.
    h.refused(
        h.call("POST", IMPORT)
            .raw("application/yaml", "openapi: [unclosed"),
        400,
        "invalid_body",
    )
    .await;
    let swagger = h
        .refused(
            h.call("POST", IMPORT)
                .raw("application/json", r#"{"swagger": "2.0", "info": {}}"#),
            400,
            "invalid_body",
        )
        .await;
    assert!(
        swagger.message().starts_with("/swagger: Swagger 2.0"),
        "{swagger:?}"
    );
    h.refused(
        h.call("POST", IMPORT).raw("text/html", PETSTORE),
        415,
        "unsupported_media_type",
    )
    .await;

    // Bad options are query errors; an unknown service fails validation naming the field.
    let bad_name = h
        .refused(
            h.call("POST", "/api/v1/apis/import?service=petstore&name=a%20b")
                .raw("application/yaml", PETSTORE),
            400,
            "invalid_query",
        )
        .await;
    assert_eq!(bad_name.field(), "name");
    let unknown = h
        .refused(
            h.call("POST", "/api/v1/apis/import?service=nope")
                .raw("application/yaml", PETSTORE),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(unknown.field(), "routes[0].service", "{unknown:?}");
    h.refused(
        h.call("POST", "/api/v1/apis/import")
            .raw("application/yaml", PETSTORE),
        400,
        "invalid_query",
    )
    .await;

    // Only admins import; an existing name and version is a conflict.
    h.refused(
        h.call("POST", IMPORT)
            .token(&h.operator.clone())
            .raw("application/yaml", PETSTORE),
        403,
        "forbidden",
    )
    .await;
    import_petstore(&h).await;
    h.refused(
        h.call("POST", IMPORT).raw("application/yaml", PETSTORE),
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn a_published_version_exports_with_the_environment_server_and_security() {
    let h = harness().await;
    h.post(
        "/api/v1/policies",
        json!({"name": "key-auth", "config": {"header": "X-Key"}}),
    )
    .await
    .ok(201);
    import_petstore(&h).await;
    publish(&h, "swagger-petstore", "1.0.0", "prod").await;

    let doc = h
        .call(
            "GET",
            "/api/v1/apis/swagger-petstore/versions/1.0.0/openapi?environment=prod",
        )
        .token(&h.viewer.clone())
        .send()
        .await
        .ok(200);
    assert!(doc.header("content-type").starts_with("application/json"));
    let doc = doc.body;
    assert_openapi_31(&doc);
    // The first exact host of the environment (the wildcard cannot be a server).
    assert_eq!(
        doc["servers"],
        json!([{"url": "https://api.example.com/v1"}])
    );
    // Kept from the imported document.
    assert_eq!(doc["info"]["title"], "Swagger Petstore");
    assert_eq!(doc["info"]["license"], json!({"name": "MIT"}));
    assert_eq!(doc["info"]["version"], "1.0.0");
    assert_eq!(
        doc["paths"]["/pets/{petId}"]["get"]["operationId"],
        "showPetById"
    );
    // The global key-auth policy is in force on every operation.
    assert_eq!(
        doc["components"]["securitySchemes"]["key-auth-header-X-Key"]["name"],
        "X-Key"
    );
    assert_eq!(
        doc["paths"]["/pets"]["get"]["security"],
        json!([{"key-auth-header-X-Key": []}])
    );

    // The version live in prod: the same document.
    let live = h
        .get("/api/v1/apis/swagger-petstore/openapi?environment=prod")
        .await
        .ok(200);
    assert_eq!(live.body, doc);

    // A server given explicitly; an environment without hosts; none at all.
    let given = h
        .get("/api/v1/apis/swagger-petstore/versions/1.0.0/openapi?server=https://pets.example.org")
        .await
        .ok(200);
    assert_eq!(
        given.body["servers"],
        json!([{"url": "https://pets.example.org/v1"}])
    );
    let bare = h
        .get("/api/v1/apis/swagger-petstore/versions/1.0.0/openapi")
        .await
        .ok(200);
    assert_eq!(bare.body["servers"], json!([{"url": "/v1"}]));

    // Not live in test; unknown environment, version or API; a bad server URL.
    for path in [
        "/api/v1/apis/swagger-petstore/openapi?environment=test",
        "/api/v1/apis/swagger-petstore/openapi?environment=nope",
        "/api/v1/apis/swagger-petstore/versions/9/openapi",
        "/api/v1/apis/nope/openapi?environment=prod",
    ] {
        assert_eq!(h.get(path).await.status, 404, "{path}");
    }
    let bad = h
        .get("/api/v1/apis/swagger-petstore/versions/1.0.0/openapi?server=ftp://x")
        .await
        .ok(400);
    assert_eq!(bad.field(), "server");
    let missing = h.get("/api/v1/apis/swagger-petstore/openapi").await.ok(400);
    assert_eq!(missing.code(), "invalid_query");
}

#[tokio::test]
async fn a_deprecated_version_exports_deprecated_operations() {
    let h = harness().await;
    import_petstore(&h).await;
    publish(&h, "swagger-petstore", "1.0.0", "prod").await;
    h.call("POST", "/api/v1/apis/swagger-petstore/deprecate")
        .json(json!({"environment": "prod"}))
        .send()
        .await
        .ok(201);
    let doc = h
        .get("/api/v1/apis/swagger-petstore/openapi?environment=prod")
        .await
        .ok(200)
        .body;
    assert_eq!(doc["paths"]["/pets"]["get"]["deprecated"], true);
    let undeclared = h
        .get("/api/v1/apis/swagger-petstore/versions/1.0.0/openapi")
        .await
        .ok(200)
        .body;
    assert!(
        undeclared["paths"]["/pets"]["get"]
            .get("deprecated")
            .is_none()
    );
}

#[tokio::test]
async fn a_group_exports_its_apis_live_in_an_environment() {
    let h = harness().await;
    for (name, path) in [
        ("users", "/users"),
        ("orders", "/orders"),
        ("other", "/other"),
    ] {
        let group = if name == "other" { "elsewhere" } else { "shop" };
        h.post(
            "/api/v1/apis",
            json!({"name": name, "version": "1", "group": group,
                   "routes": [{"name": "list", "paths": [format!("= {path}")], "methods": ["GET"], "service": "petstore"}]}),
        )
        .await
        .ok(201);
    }
    publish(&h, "users", "1", "prod").await;
    publish(&h, "orders", "1", "prod").await;
    publish(&h, "other", "1", "prod").await;

    let doc = h
        .get("/api/v1/groups/shop/openapi?environment=prod")
        .await
        .ok(200)
        .body;
    assert_openapi_31(&doc);
    assert_eq!(doc["info"]["title"], "shop");
    assert_eq!(doc["servers"], json!([{"url": "https://api.example.com"}]));
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(paths, BTreeSet::from(["/orders", "/users"]));
    // The operation ids stay unique across the group.
    assert_eq!(doc["paths"]["/users"]["get"]["operationId"], "list-2");

    for path in [
        "/api/v1/groups/shop/openapi?environment=test",
        "/api/v1/groups/nope/openapi?environment=prod",
    ] {
        assert_eq!(h.get(path).await.code(), "not_found", "{path}");
    }
}

#[tokio::test]
async fn an_api_named_import_is_still_readable() {
    let h = harness().await;
    h.post(
        "/api/v1/apis",
        crate::support::api("import", "1", "/import", "petstore"),
    )
    .await
    .ok(201);
    let reply = h.get("/api/v1/apis/import").await.ok(200);
    assert_eq!(reply.body["name"], "import");
    assert_eq!(h.get("/api/v1/apis/import/versions/1").await.status, 200);
}
