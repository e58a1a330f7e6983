//! The audit log: every write with who, before and after; readable, never writable.

use serde_json::json;

use crate::support::{Harness, service};

#[tokio::test]
async fn every_write_is_audited_with_actor_before_and_after() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("s")).await.ok(201);
    let mut body = h.get("/api/v1/services/s").await.body;
    body["targets"][0]["weight"] = json!(4);
    h.put("/api/v1/services/s", body).await.ok(200);
    h.delete("/api/v1/services/s").await.ok(204);

    let log = h.get("/api/v1/audit?kind=service&key=s").await.ok(200);
    let items = log.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["service.delete", "service.update", "service.create"]
    );
    assert!(items.iter().all(|e| e["actor"] == "admin-token"));
    let update = &items[1];
    assert_eq!(update["before"]["targets"][0]["weight"], 1);
    assert_eq!(update["after"]["targets"][0]["weight"], 4);
    assert!(items[2]["before"].is_null() && items[0]["after"].is_null());
    assert!(update["at"].as_str().unwrap().ends_with('Z'));

    let by_actor = h.get("/api/v1/audit?actor=nobody").await.ok(200);
    assert_eq!(by_actor.body["items"], json!([]));
}

#[tokio::test]
async fn audit_pages_newest_first() {
    let h = Harness::new().await;
    for i in 0..3 {
        h.post("/api/v1/services", service(&format!("s{i}")))
            .await
            .ok(201);
    }
    let first = h.get("/api/v1/audit?kind=service&limit=2").await.ok(200);
    assert_eq!(first.body["items"][0]["key"], "s2");
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = h
        .get(&format!("/api/v1/audit?kind=service&cursor={cursor}"))
        .await
        .ok(200);
    assert_eq!(rest.body["items"][0]["key"], "s0");
    assert!(rest.body["next_cursor"].is_null());
    let before = first.body["items"][0]["id"].as_i64().unwrap();
    let older = h
        .get(&format!("/api/v1/audit?kind=service&before={before}"))
        .await
        .ok(200);
    assert_eq!(older.body["items"].as_array().unwrap().len(), 2);
    let r = h
        .get(&format!("/api/v1/audit?before=1&cursor={cursor}"))
        .await
        .ok(400);
    assert_eq!(r.code(), "invalid_query");
}

#[tokio::test]
async fn viewers_read_the_audit_log() {
    let h = Harness::new().await;
    h.call("GET", "/api/v1/audit")
        .token(&h.viewer.clone())
        .send()
        .await
        .ok(200);
}
