//! The OpenAPI document is generated from the code and checked in as
//! `docs/admin-openapi.json`; this test fails when they differ. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p tollgate-admin --test api openapi`.

use std::path::PathBuf;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/admin-openapi.json")
}

#[test]
fn checked_in_openapi_document_matches_the_code() {
    let generated = tollgate_admin::openapi_json();
    let path = checked_in();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let file = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        file == generated,
        "docs/admin-openapi.json is out of date with the code; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p tollgate-admin --test api openapi` and review the diff"
    );
}

#[test]
fn document_is_openapi_3_1_with_bearer_security() {
    let doc: serde_json::Value = serde_json::from_str(&tollgate_admin::openapi_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
    assert_eq!(
        doc["paths"]["/api/v1/openapi.json"]["get"]["security"],
        serde_json::json!([{}]),
        "the document itself needs no token"
    );
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
}

#[tokio::test]
async fn every_operation_but_the_document_needs_a_token() {
    let h = crate::support::Harness::new().await;
    let doc: serde_json::Value = serde_json::from_str(&tollgate_admin::openapi_json()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{name}", "x")
                .replace("{version}", "1")
                .replace("{id}", "1");
            let reply = h
                .call(&method.to_uppercase(), &concrete)
                .no_token()
                .send()
                .await;
            let expected = if path == "/api/v1/openapi.json" {
                200
            } else {
                401
            };
            assert_eq!(reply.status, expected, "{method} {path}: {reply:?}");
        }
    }
}

#[tokio::test]
async fn served_document_is_the_generated_one() {
    let h = crate::support::Harness::new().await;
    let reply = h
        .call("GET", "/api/v1/openapi.json")
        .no_token()
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.text, tollgate_admin::openapi_json());
}
