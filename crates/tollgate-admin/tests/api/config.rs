//! Declarative sync: export, diff, apply (one change set, all or nothing, idempotent).

use serde_json::json;

use crate::support::{Harness, api, service};

const FILE: &str = r#"
services:
  - name: users
    targets: [{url: "http://127.0.0.1:9"}]
apis:
  - name: users-api
    routes:
      - name: list
        paths: ["/users"]
        service: users
consumers:
  - name: app
    credentials:
      - {type: key-auth, id: k1, key: clear-key-123}
"#;

#[tokio::test]
async fn apply_is_one_change_set_and_idempotent() {
    let h = Harness::new().await;
    let diff = h
        .call("POST", "/api/v1/config/diff")
        .raw("application/yaml", FILE)
        .send()
        .await
        .ok(200);
    assert_eq!(diff.body["changed"], true);
    assert!(!diff.text.contains("clear-key-123"), "{}", diff.text);
    assert_eq!(
        h.get("/api/v1/services").await.names(),
        Vec::<String>::new(),
        "diff writes nothing"
    );

    let before = h.store.revision().await.unwrap();
    let applied = h
        .call("POST", "/api/v1/config/apply")
        .raw("application/yaml", FILE)
        .send()
        .await
        .ok(200);
    assert_eq!(applied.body["revision"], before + 1, "one change set");
    let kinds: Vec<&str> = applied.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"service.create") && kinds.contains(&"release.create"),
        "{kinds:?}"
    );
    assert_eq!(diff.body["changes"].as_array().unwrap().len(), kinds.len());
    // The API was live everywhere (no `publish`): it is published to the implicit prod.
    let summary = h.get("/api/v1/apis/users-api").await.ok(200);
    assert_eq!(summary.body["deployments"][0]["environment"], "prod");

    let written = h.written().await;
    let again = h
        .call("POST", "/api/v1/config/apply")
        .raw("application/yaml", FILE)
        .send()
        .await
        .ok(200);
    assert_eq!(again.body["changed"], false);
    assert_eq!(again.body["revision"], applied.body["revision"]);
    assert_eq!(h.written().await, written, "a second apply changes nothing");

    // The export applies back to the same state.
    let export = h
        .call("GET", "/api/v1/config")
        .header("accept", "application/json")
        .send()
        .await
        .ok(200);
    assert!(!export.text.contains("clear-key-123"));
    let reapplied = h
        .call("POST", "/api/v1/config/apply")
        .raw("application/json", &export.text)
        .send()
        .await
        .ok(200);
    assert_eq!(reapplied.body["changed"], false, "{}", reapplied.text);
}

#[tokio::test]
async fn export_is_yaml_by_default() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("s")).await.ok(201);
    let yaml = h.get("/api/v1/config").await.ok(200);
    assert_eq!(yaml.header("content-type"), "application/yaml");
    assert!(yaml.text.contains("services:"), "{}", yaml.text);
    let json = h
        .call("GET", "/api/v1/config")
        .header("accept", "application/json")
        .send()
        .await
        .ok(200);
    assert_eq!(json.body["services"][0]["name"], "s");
}

#[tokio::test]
async fn a_failing_apply_leaves_the_store_as_it_was() {
    let h = Harness::new().await;
    h.call("POST", "/api/v1/config/apply")
        .raw("application/yaml", FILE)
        .send()
        .await
        .ok(200);

    // Invalid file: parse errors carry the field path, line and column.
    let broken = FILE.replace("service: users", "service: nobody");
    let r = h
        .refused(
            h.call("POST", "/api/v1/config/apply")
                .raw("application/yaml", &broken),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "apis[0].routes[0].service");
    assert_eq!(r.body["error"]["details"][0]["line"], 10, "{r:?}");
    let r = h
        .refused(
            h.call("POST", "/api/v1/config/apply")
                .raw("application/yaml", "services: [{name: s, tragets: []}]"),
            400,
            "invalid_config",
        )
        .await;
    assert!(r.message().contains("tragets"), "{r:?}");

    // Valid file that fails halfway through the change set: the published version changed.
    let changed = FILE.replace("paths: [\"/users\"]", "paths: [\"/people\"]");
    let r = h
        .refused(
            h.call("POST", "/api/v1/config/apply")
                .raw("application/yaml", &changed),
            409,
            "conflict",
        )
        .await;
    assert!(r.message().contains("published"), "{r:?}");
    assert_eq!(h.get("/api/v1/services").await.names(), ["users"]);

    h.refused(
        h.call("POST", "/api/v1/config/apply").raw(
            "application/yaml",
            "tls:\n  certificates: [{cert: /c.pem, key: /k.pem}]\n",
        ),
        400,
        "invalid_config",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/config/apply")
            .raw("application/xml", "<x/>"),
        415,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn apply_through_the_api_matches_object_writes() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("s")).await.ok(201);
    h.post("/api/v1/apis", api("a", "1", "/a", "s"))
        .await
        .ok(201);
    let export = h
        .call("GET", "/api/v1/config")
        .header("accept", "application/json")
        .send()
        .await
        .ok(200);
    assert_eq!(
        export.body["apis"][0]["publish"],
        json!([]),
        "drafts are live nowhere"
    );
    let diff = h
        .call("POST", "/api/v1/config/diff")
        .raw("application/json", &export.text)
        .send()
        .await
        .ok(200);
    assert_eq!(diff.body["changed"], false, "{}", diff.text);
}
