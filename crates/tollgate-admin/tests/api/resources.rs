//! Services, policies, environments, consumers and settings: CRUD, ETags, `If-Match`,
//! pagination and filters.

use serde_json::json;

use crate::support::{Harness, service};

#[tokio::test]
async fn service_crud_round_trips_the_wire_type_with_etags() {
    let h = Harness::new().await;
    let created = h.post("/api/v1/services", service("billing")).await.ok(201);
    assert_eq!(created.header("location"), "/api/v1/services/billing");
    let etag = created.etag();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    // Defaults are filled in: what GET returns can be PUT back as it is.
    assert_eq!(created.body["targets"][0]["weight"], 1);
    assert_eq!(created.body["protocol"], "http1");

    let got = h.get("/api/v1/services/billing").await.ok(200);
    assert_eq!(got.etag(), etag);
    assert_eq!(got.body, created.body);

    let unchanged = h
        .put("/api/v1/services/billing", got.body.clone())
        .await
        .ok(200);
    assert_eq!(unchanged.etag(), etag, "an identical PUT writes nothing");

    let mut changed = got.body.clone();
    changed["targets"][0]["weight"] = json!(5);
    let replaced = h
        .call("PUT", "/api/v1/services/billing")
        .header("if-match", &etag)
        .json(changed)
        .send()
        .await
        .ok(200);
    assert_ne!(replaced.etag(), etag);
    assert_eq!(replaced.body["targets"][0]["weight"], 5);

    h.call("DELETE", "/api/v1/services/billing")
        .header("if-match", &replaced.etag())
        .send()
        .await
        .ok(204);
    assert_eq!(h.get("/api/v1/services/billing").await.status, 404);
}

#[tokio::test]
async fn stale_if_match_is_412_and_writes_nothing() {
    let h = Harness::new().await;
    let first = h.post("/api/v1/services", service("s")).await.ok(201);
    let stale = first.etag();
    let mut body = first.body.clone();
    body["targets"][0]["weight"] = json!(2);
    h.put("/api/v1/services/s", body.clone()).await.ok(200);
    body["targets"][0]["weight"] = json!(3);
    let reply = h
        .refused(
            h.call("PUT", "/api/v1/services/s")
                .header("if-match", &stale)
                .json(body),
            412,
            "precondition_failed",
        )
        .await;
    assert!(reply.message().contains("revision"), "{reply:?}");
    h.refused(
        h.call("DELETE", "/api/v1/services/s")
            .header("if-match", &stale),
        412,
        "precondition_failed",
    )
    .await;
    let reply = h
        .refused(
            h.call("DELETE", "/api/v1/services/s")
                .header("if-match", "12"),
            400,
            "invalid_header",
        )
        .await;
    assert_eq!(reply.field(), "If-Match");
}

#[tokio::test]
async fn put_of_a_missing_object_is_404_not_a_create() {
    let h = Harness::new().await;
    h.refused(
        h.call("PUT", "/api/v1/services/nope").json(service("nope")),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn lists_paginate_with_an_opaque_cursor_and_filter_by_name() {
    let h = Harness::new().await;
    for i in 0..5 {
        h.post("/api/v1/services", service(&format!("svc-{i}")))
            .await
            .ok(201);
    }
    h.post("/api/v1/services", service("other")).await.ok(201);
    let first = h.get("/api/v1/services?limit=2").await.ok(200);
    assert_eq!(first.names(), ["other", "svc-0"]);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = h
        .get(&format!("/api/v1/services?limit=2&cursor={cursor}"))
        .await
        .ok(200);
    assert_eq!(second.names(), ["svc-1", "svc-2"]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = h
        .get(&format!("/api/v1/services?limit=2&cursor={cursor}"))
        .await
        .ok(200);
    assert_eq!(last.names(), ["svc-3", "svc-4"]);
    assert!(last.body["next_cursor"].is_null());

    let filtered = h.get("/api/v1/services?name=SVC-").await.ok(200);
    assert_eq!(filtered.names().len(), 5);
    assert_eq!(
        h.get("/api/v1/services").await.names().len(),
        6,
        "default limit 100"
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/services?limit=0").await.ok(400);
    assert_eq!((r.code(), r.field()), ("invalid_query", "limit"));
    let r = h.get("/api/v1/services?limit=1001").await.ok(400);
    assert_eq!(r.field(), "limit");
    let r = h.get("/api/v1/services?limit=many").await.ok(400);
    assert_eq!(r.field(), "limit");
    let r = h.get("/api/v1/services?cursor=%21%21").await.ok(400);
    assert_eq!(r.field(), "cursor");
    let r = h.get("/api/v1/services?tag=x").await.ok(400);
    assert!(r.message().contains("tag"), "services have no tags: {r:?}");
}

#[tokio::test]
async fn consumers_filter_by_tag_and_never_return_clear_secrets() {
    let h = Harness::new().await;
    let created = h
        .post(
            "/api/v1/consumers",
            json!({
                "name": "shop",
                "tags": ["partner"],
                "credentials": [
                    {"type": "key-auth", "id": "k1", "key": "key-s3cret"},
                    {"type": "basic-auth", "id": "b1", "username": "shop", "password": "pw-s3cret"},
                    {"type": "hmac", "id": "h1", "secret": "hmac-s3cret"},
                ],
            }),
        )
        .await
        .ok(201);
    assert!(!created.text.contains("s3cret"), "{}", created.text);
    assert!(created.body["credentials"][0]["key_sha256"].is_string());
    h.post("/api/v1/consumers", json!({"name": "internal"}))
        .await
        .ok(201);
    let tagged = h.get("/api/v1/consumers?tag=partner").await.ok(200);
    assert_eq!(tagged.names(), ["shop"]);

    // A consumer read back can be written back: stored forms are accepted and kept.
    let got = h.get("/api/v1/consumers/shop").await.ok(200);
    let again = h
        .put("/api/v1/consumers/shop", got.body.clone())
        .await
        .ok(200);
    assert_eq!(
        again.etag(),
        got.etag(),
        "re-writing stored secrets changes nothing"
    );

    let audit = h.get("/api/v1/audit?kind=consumer").await.ok(200);
    assert!(!audit.text.contains("s3cret"), "{}", audit.text);
}

#[tokio::test]
async fn credentials_are_added_and_removed_one_by_one() {
    let h = Harness::new().await;
    h.post("/api/v1/consumers", json!({"name": "app"}))
        .await
        .ok(201);
    let added = h
        .post(
            "/api/v1/consumers/app/credentials",
            json!({"type": "key-auth", "id": "k1", "key": "clear-key"}),
        )
        .await
        .ok(201);
    assert_eq!(
        added.header("location"),
        "/api/v1/consumers/app/credentials/k1"
    );
    assert!(!added.text.contains("clear-key"), "{}", added.text);
    assert_eq!(added.body["type"], "key-auth");

    let dup = h
        .refused(
            h.call("POST", "/api/v1/consumers/app/credentials")
                .json(json!({"type": "key-auth", "id": "k1", "key": "other"})),
            409,
            "conflict",
        )
        .await;
    assert!(dup.message().contains("k1"), "{dup:?}");
    let list = h.get("/api/v1/consumers/app/credentials").await.ok(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    h.delete("/api/v1/consumers/app/credentials/k1")
        .await
        .ok(204);
    h.refused(
        h.call("DELETE", "/api/v1/consumers/app/credentials/k1"),
        404,
        "not_found",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/consumers/ghost/credentials")
            .json(json!({"type": "hmac", "id": "h", "secret": "x"})),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn global_policies_are_keyed_by_plugin_name() {
    let h = Harness::new().await;
    let created = h
        .post(
            "/api/v1/policies",
            json!({"name": "cors", "config": {"allow_origins": ["*"]}}),
        )
        .await
        .ok(201);
    assert_eq!(created.body["enabled"], true);
    h.refused(
        h.call("POST", "/api/v1/policies")
            .json(json!({"name": "cors"})),
        409,
        "conflict",
    )
    .await;
    assert_eq!(h.get("/api/v1/policies").await.names(), ["cors"]);
    h.delete("/api/v1/policies/cors").await.ok(204);
}

#[tokio::test]
async fn environments_in_use_cannot_be_deleted() {
    let h = Harness::new().await;
    h.post("/api/v1/environments", json!({"name": "prod"}))
        .await
        .ok(201);
    h.post("/api/v1/services", service("s")).await.ok(201);
    h.post("/api/v1/apis", crate::support::api("a", "1", "/a", "s"))
        .await
        .ok(201);
    h.post(
        "/api/v1/apis/a/versions/1/publish",
        json!({"environment": "prod"}),
    )
    .await
    .ok(201);
    let r = h
        .refused(
            h.call("DELETE", "/api/v1/environments/prod"),
            409,
            "conflict",
        )
        .await;
    assert!(r.message().contains("unpublish"), "{r:?}");
}

#[tokio::test]
async fn settings_read_defaults_and_take_if_match() {
    let h = Harness::new().await;
    let got = h.get("/api/v1/settings").await.ok(200);
    assert_eq!(got.etag(), "\"0\"");
    assert_eq!(got.body["timeouts"]["idle"], "1m");
    let mut body = got.body.clone();
    body["workers"] = json!(2);
    let put = h
        .call("PUT", "/api/v1/settings")
        .header("if-match", "\"0\"")
        .json(body.clone())
        .send()
        .await
        .ok(200);
    assert_eq!(put.body["workers"], 2);
    body["workers"] = json!(3);
    h.refused(
        h.call("PUT", "/api/v1/settings")
            .header("if-match", "\"0\"")
            .json(body),
        412,
        "precondition_failed",
    )
    .await;
    let r = h
        .refused(
            h.call("PUT", "/api/v1/settings")
                .json(json!({"environment_header": "bad header"})),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "environment_header");
}
