//! Every kind of bad input gets the right 4xx, a specific code and field, and writes nothing
//! (store revision and audit log unchanged).

use serde_json::json;

use crate::support::{Harness, api, service};

#[tokio::test]
async fn invalid_json_is_400_with_line_and_column() {
    let h = Harness::new().await;
    let r = h
        .refused(
            h.call("POST", "/api/v1/services")
                .raw("application/json", "{\"name\": \"s\",\n \"targets\": [}"),
            400,
            "invalid_json",
        )
        .await;
    assert_eq!(r.body["error"]["details"][0]["line"], 2, "{r:?}");
    h.refused(
        h.call("POST", "/api/v1/services")
            .raw("application/json", "{\"name\": \"s\"} trailing"),
        400,
        "invalid_json",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/services")
            .raw("application/json", ""),
        400,
        "invalid_json",
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_400_naming_the_field() {
    let h = Harness::new().await;
    let r = h
        .refused(
            h.call("POST", "/api/v1/services").json(
                json!({"name": "s", "targets": [{"url": "http://127.0.0.1:1", "wieght": 2}]}),
            ),
            400,
            "invalid_body",
        )
        .await;
    assert_eq!(r.field(), "targets[0].wieght");
    assert!(r.message().contains("wieght"), "{r:?}");
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_400_naming_the_field() {
    let h = Harness::new().await;
    let r = h
        .refused(
            h.call("POST", "/api/v1/services").json(
                json!({"name": "s", "targets": [{"url": "http://127.0.0.1:1", "weight": "heavy"}]}),
            ),
            400,
            "invalid_body",
        )
        .await;
    assert_eq!(r.field(), "targets[0].weight");
    let r = h
        .refused(
            h.call("POST", "/api/v1/apis")
                .json(json!({"name": "a", "routes": [{"name": "r", "paths": ["/"]}]})),
            400,
            "invalid_body",
        )
        .await;
    assert_eq!(r.field(), "routes[0].service", "{r:?}");
}

#[tokio::test]
async fn a_non_json_media_type_is_415() {
    let h = Harness::new().await;
    h.refused(
        h.call("POST", "/api/v1/services")
            .raw("text/xml", "<service/>"),
        415,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn dangling_references_are_400_with_the_body_path() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("a-first")).await.ok(201);
    let r = h
        .refused(
            h.call("POST", "/api/v1/apis")
                .json(api("orders", "1", "/orders", "missing")),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "routes[0].service", "{r:?}");
    assert!(r.message().contains("missing"), "{r:?}");

    // Deleting a service a route uses: the problem is elsewhere, so the path is the
    // configuration's.
    h.post("/api/v1/apis", api("orders", "1", "/orders", "a-first"))
        .await
        .ok(201);
    let r = h
        .refused(
            h.call("DELETE", "/api/v1/services/a-first"),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "apis[0].routes[0].service", "{r:?}");
}

#[tokio::test]
async fn invalid_values_are_400_with_the_body_path() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("a")).await.ok(201);
    let r = h
        .refused(
            h.call("POST", "/api/v1/services")
                .json(json!({"name": "b", "targets": [{"url": "ftp://x"}]})),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "targets[0].url", "{r:?}");
    let r = h
        .refused(
            h.call("POST", "/api/v1/services")
                .json(json!({"name": "bad name", "targets": [{"url": "http://127.0.0.1:1"}]})),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(r.field(), "name", "{r:?}");
}

#[tokio::test]
async fn duplicate_names_are_409() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("s")).await.ok(201);
    let r = h
        .refused(
            h.call("POST", "/api/v1/services").json(service("s")),
            409,
            "conflict",
        )
        .await;
    assert!(r.message().contains("exists"), "{r:?}");
    h.post("/api/v1/apis", api("a", "1", "/a", "s"))
        .await
        .ok(201);
    h.refused(
        h.call("POST", "/api/v1/apis")
            .json(api("a", "1", "/b", "s")),
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn route_conflicts_are_refused_on_publish() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("s")).await.ok(201);
    h.post("/api/v1/apis", api("a", "1", "/same", "s"))
        .await
        .ok(201);
    h.post("/api/v1/apis", api("b", "1", "/same", "s"))
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
            h.call("POST", "/api/v1/apis/b/versions/1/publish")
                .json(json!({"environment": "prod"})),
            400,
            "invalid_config",
        )
        .await;
    assert!(r.field().starts_with("apis["), "{r:?}");
}

#[tokio::test]
async fn the_name_in_the_path_must_match_the_body() {
    let h = Harness::new().await;
    h.post("/api/v1/services", service("s")).await.ok(201);
    let r = h
        .refused(
            h.call("PUT", "/api/v1/services/s").json(service("t")),
            400,
            "name_mismatch",
        )
        .await;
    assert_eq!(r.field(), "name");
    h.post("/api/v1/apis", api("a", "1", "/a", "s"))
        .await
        .ok(201);
    let r = h
        .refused(
            h.call("PUT", "/api/v1/apis/a/versions/1")
                .json(api("a", "2", "/a", "s")),
            400,
            "name_mismatch",
        )
        .await;
    assert_eq!(r.field(), "version");
}

#[tokio::test]
async fn missing_unknown_and_malformed_tokens_are_401() {
    let h = Harness::new().await;
    let r = h
        .refused(
            h.call("POST", "/api/v1/services")
                .no_token()
                .json(service("s")),
            401,
            "unauthorized",
        )
        .await;
    assert!(r.header("www-authenticate").starts_with("Bearer"), "{r:?}");
    let r = h
        .refused(
            h.call("POST", "/api/v1/services")
                .token("tg_not_a_token")
                .json(service("s")),
            401,
            "unauthorized",
        )
        .await;
    assert!(
        r.header("www-authenticate").contains("invalid_token"),
        "{r:?}"
    );
    h.refused(
        h.call("GET", "/api/v1/services")
            .no_token()
            .header("authorization", "Basic YWRtaW46YWRtaW4="),
        401,
        "unauthorized",
    )
    .await;
    // Authentication comes before the body is read.
    h.refused(
        h.call("POST", "/api/v1/services")
            .no_token()
            .raw("application/json", "{"),
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn under_privileged_tokens_are_403() {
    let h = Harness::new().await;
    h.get("/api/v1/services").await.ok(200);
    h.call("GET", "/api/v1/services")
        .token(&h.viewer.clone())
        .send()
        .await
        .ok(200);
    let r = h
        .refused(
            h.call("POST", "/api/v1/services")
                .token(&h.viewer.clone())
                .json(service("s")),
            403,
            "forbidden",
        )
        .await;
    assert!(r.message().contains("viewer"), "{r:?}");
    h.refused(
        h.call("POST", "/api/v1/services")
            .token(&h.operator.clone())
            .json(service("s")),
        403,
        "forbidden",
    )
    .await;
    h.refused(
        h.call("POST", "/api/v1/apis/a/versions/1/publish")
            .token(&h.viewer.clone())
            .json(json!({"environment": "prod"})),
        403,
        "forbidden",
    )
    .await;
    h.refused(
        h.call("GET", "/api/v1/tokens").token(&h.operator.clone()),
        403,
        "forbidden",
    )
    .await;
    // The role check comes before the body is read.
    h.refused(
        h.call("POST", "/api/v1/services")
            .token(&h.viewer.clone())
            .raw("application/json", "{"),
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/nothing-here").await.ok(404);
    assert_eq!(r.code(), "not_found");
    let r = h
        .refused(
            h.call("POST", "/api/v1/audit").json(json!({})),
            405,
            "method_not_allowed",
        )
        .await;
    assert_eq!(r.status, 405);
    h.refused(h.call("DELETE", "/api/v1/audit"), 405, "method_not_allowed")
        .await;
}
