//! APIs, versions and their lifecycle: publish → releases → rollback → unpublish →
//! deprecate → undeprecate.

use serde_json::json;

use crate::support::{Harness, api, service};

async fn with_two_versions() -> Harness {
    let h = Harness::new().await;
    h.post("/api/v1/environments", json!({"name": "prod"}))
        .await
        .ok(201);
    h.post(
        "/api/v1/environments",
        json!({"name": "test", "hosts": ["test.example.com"]}),
    )
    .await
    .ok(201);
    h.post("/api/v1/services", service("s")).await.ok(201);
    let created = h
        .post("/api/v1/apis", api("orders", "1", "/orders", "s"))
        .await
        .ok(201);
    assert_eq!(created.header("location"), "/api/v1/apis/orders/versions/1");
    h.post("/api/v1/apis", api("orders", "2", "/orders", "s"))
        .await
        .ok(201);
    h
}

#[tokio::test]
async fn publish_rollback_unpublish_and_deprecate_record_releases() {
    let h = with_two_versions().await;
    let op = h.operator.clone();
    let first = h
        .call("POST", "/api/v1/apis/orders/versions/1/publish")
        .token(&op)
        .json(json!({"environment": "prod", "note": "first"}))
        .send()
        .await
        .ok(201);
    assert_eq!(first.body["action"], "publish");
    assert_eq!(first.body["actor"], "operator-token");
    assert_eq!(
        first.header("location"),
        format!("/api/v1/releases/{}", first.body["id"])
    );
    let second = h
        .call("POST", "/api/v1/apis/orders/versions/2/publish")
        .token(&op)
        .json(json!({"environment": "prod"}))
        .send()
        .await
        .ok(201);
    let summary = h.get("/api/v1/apis/orders").await.ok(200);
    assert_eq!(summary.body["deployments"][0]["version"], "2");
    assert_eq!(summary.body["versions"][0]["published"], true);
    assert_eq!(summary.body["versions"][1]["live_in"], json!(["prod"]));

    let back = h
        .call("POST", "/api/v1/apis/orders/rollback")
        .token(&op)
        .json(json!({"environment": "prod", "note": "v2 is broken"}))
        .send()
        .await
        .ok(201);
    assert_eq!(back.body["action"], "rollback");
    assert_eq!(back.body["version"], "1");
    assert_eq!(back.body["restores"], first.body["id"]);

    let deprecated = h
        .call("POST", "/api/v1/apis/orders/deprecate")
        .token(&op)
        .json(json!({"environment": "prod", "sunset": "2030-01-01T00:00:00Z", "link": "https://example.com/migrate"}))
        .send()
        .await
        .ok(201);
    assert_eq!(deprecated.body["action"], "deprecate");
    let summary = h.get("/api/v1/apis/orders").await.ok(200);
    assert_eq!(
        summary.body["deployments"][0]["deprecation"]["sunset"],
        "2030-01-01T00:00:00Z"
    );
    h.call("POST", "/api/v1/apis/orders/undeprecate")
        .token(&op)
        .json(json!({"environment": "prod"}))
        .send()
        .await
        .ok(201);
    h.call("POST", "/api/v1/apis/orders/unpublish")
        .token(&op)
        .json(json!({"environment": "prod"}))
        .send()
        .await
        .ok(201);
    let summary = h.get("/api/v1/apis/orders").await.ok(200);
    assert_eq!(summary.body["deployments"], json!([]));

    let history = h
        .get("/api/v1/apis/orders/releases?environment=prod")
        .await
        .ok(200);
    let actions: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "unpublish",
            "undeprecate",
            "deprecate",
            "rollback",
            "publish",
            "publish"
        ],
        "newest first"
    );
    let page = h.get("/api/v1/releases?api=orders&limit=2").await.ok(200);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = h
        .get(&format!("/api/v1/releases?api=orders&cursor={cursor}"))
        .await
        .ok(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 4);
    let one = h
        .get(&format!("/api/v1/releases/{}", second.body["id"]))
        .await
        .ok(200);
    assert_eq!(one.body, second.body);
    assert_eq!(h.get("/api/v1/releases/999").await.status, 404);
}

#[tokio::test]
async fn published_versions_are_immutable_and_live_ones_cannot_be_deleted() {
    let h = with_two_versions().await;
    h.post(
        "/api/v1/apis/orders/versions/1/publish",
        json!({"environment": "prod"}),
    )
    .await
    .ok(201);
    let r = h
        .refused(
            h.call("PUT", "/api/v1/apis/orders/versions/1")
                .json(api("orders", "1", "/changed", "s")),
            409,
            "conflict",
        )
        .await;
    assert!(r.message().contains("published"), "{r:?}");
    h.refused(
        h.call("DELETE", "/api/v1/apis/orders/versions/1"),
        409,
        "conflict",
    )
    .await;
    // Drafts stay editable.
    let draft = h.get("/api/v1/apis/orders/versions/2").await.ok(200);
    let mut body = draft.body.clone();
    body["description"] = json!("second");
    h.call("PUT", "/api/v1/apis/orders/versions/2")
        .header("if-match", &draft.etag())
        .json(body)
        .send()
        .await
        .ok(200);
    h.delete("/api/v1/apis/orders/versions/2").await.ok(204);
    let versions = h.get("/api/v1/apis/orders/versions").await.ok(200);
    assert_eq!(versions.body["items"][0]["version"], "1");
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn lifecycle_fields_are_not_part_of_a_version_body() {
    let h = with_two_versions().await;
    let mut body = api("orders", "3", "/orders", "s");
    body["publish"] = json!(["prod"]);
    let r = h
        .refused(
            h.call("POST", "/api/v1/apis").json(body),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "publish");
}

#[tokio::test]
async fn lifecycle_calls_take_the_api_revision_as_if_match() {
    let h = with_two_versions().await;
    let etag = h.get("/api/v1/apis/orders").await.ok(200).etag();
    h.call("POST", "/api/v1/apis/orders/versions/1/publish")
        .header("if-match", &etag)
        .json(json!({"environment": "prod"}))
        .send()
        .await
        .ok(201);
    h.refused(
        h.call("POST", "/api/v1/apis/orders/versions/2/publish")
            .header("if-match", &etag)
            .json(json!({"environment": "prod"})),
        412,
        "precondition_failed",
    )
    .await;
}

#[tokio::test]
async fn lifecycle_mistakes_are_4xx_and_write_nothing() {
    let h = with_two_versions().await;
    h.refused(
        h.call("POST", "/api/v1/apis/orders/versions/9/publish")
            .json(json!({"environment": "prod"})),
        404,
        "not_found",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/apis/orders/versions/1/publish")
            .json(json!({"environment": "staging"})),
        404,
        "not_found",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/apis/orders/unpublish")
            .json(json!({"environment": "prod"})),
        404,
        "not_found",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/apis/orders/rollback")
            .json(json!({"environment": "prod"})),
        409,
        "conflict",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/apis/orders/versions/1/publish")
            .json(json!({"environment": "prod", "when": "now"})),
        400,
        "invalid_body",
    )
    .await;
    h.post(
        "/api/v1/apis/orders/versions/1/publish",
        json!({"environment": "prod"}),
    )
    .await
    .ok(201);
    h.refused(
        h.call("POST", "/api/v1/apis/orders/versions/1/publish")
            .json(json!({"environment": "prod"})),
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn apis_list_with_versions_and_filters() {
    let h = with_two_versions().await;
    let mut tagged = api("billing", "1", "/billing", "s");
    tagged["tags"] = json!(["money"]);
    h.post("/api/v1/apis", tagged).await.ok(201);
    let all = h.get("/api/v1/apis").await.ok(200);
    assert_eq!(all.names(), ["billing", "orders"]);
    assert_eq!(
        all.body["items"][1]["versions"].as_array().unwrap().len(),
        2
    );
    assert_eq!(h.get("/api/v1/apis?tag=money").await.names(), ["billing"]);
    assert_eq!(h.get("/api/v1/apis?name=ord").await.names(), ["orders"]);
    assert_eq!(h.get("/api/v1/apis/nope").await.status, 404);
    assert_eq!(h.get("/api/v1/apis/nope/versions").await.status, 404);
}
