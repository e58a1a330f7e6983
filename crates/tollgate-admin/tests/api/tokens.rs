//! Admin tokens through the API, and file mode's fixed tokens.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus_client::registry::Registry;
use serde_json::json;
use tollgate_admin::AdminState;
use tollgate_admin::control::Control;
use tollgate_admin::tokens::StaticTokens;
use tollgate_store::secrets::sha256_hex;

use crate::support::{Harness, ModelValidator, key, service};

#[tokio::test]
async fn created_tokens_work_at_once_are_shown_once_and_revocation_is_immediate() {
    let h = Harness::new().await;
    let created = h
        .post("/api/v1/tokens", json!({"name": "ci", "role": "operator"}))
        .await
        .ok(201);
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tg_"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.header("location"), format!("/api/v1/tokens/{id}"));

    h.call("GET", "/api/v1/services")
        .token(&token)
        .send()
        .await
        .ok(200);
    let list = h.get("/api/v1/tokens").await.ok(200);
    assert!(!list.text.contains(&token) && !list.text.contains(&sha256_hex(&token)));
    assert!(list.names().contains(&"ci".to_owned()));

    let audit = h.get("/api/v1/audit?kind=token").await.ok(200);
    assert_eq!(audit.body["items"][0]["action"], "token.create");
    assert_eq!(audit.body["items"][0]["actor"], "admin-token");

    h.delete(&format!("/api/v1/tokens/{id}")).await.ok(204);
    h.call("GET", "/api/v1/services")
        .token(&token)
        .send()
        .await
        .ok(401);
    assert_eq!(h.delete(&format!("/api/v1/tokens/{id}")).await.status, 404);
}

#[tokio::test]
async fn token_bodies_are_checked() {
    let h = Harness::new().await;
    let r = h
        .refused(
            h.call("POST", "/api/v1/tokens")
                .json(json!({"name": "x", "role": "root"})),
            400,
            "invalid_body",
        )
        .await;
    assert_eq!(r.field(), "role");
    let r = h
        .refused(
            h.call("POST", "/api/v1/tokens")
                .json(json!({"name": " ", "role": "viewer"})),
            400,
            "invalid_body",
        )
        .await;
    assert_eq!(r.field(), "name");
}

#[tokio::test]
async fn file_mode_reads_with_token_file_tokens_and_refuses_writes() {
    let config = tollgate_model::parse_config(
        "services: [{name: s, targets: [{url: 'http://127.0.0.1:9'}]}]\n",
        tollgate_model::Format::Yaml,
        "t.yaml",
    )
    .unwrap();
    let control = Arc::new(Control::with_file(&config, key(), Arc::new(ModelValidator)).unwrap());
    let tokens = StaticTokens::parse(&format!(
        "admin {} ops\nviewer {} dash\n",
        sha256_hex("tg_file_admin"),
        sha256_hex("tg_file_viewer")
    ))
    .unwrap();
    let router = tollgate_admin::router(
        AdminState::new(
            Arc::new(Registry::default()),
            Arc::new(AtomicBool::new(true)),
        )
        .with_api(Some(control), None)
        .with_token_source(Arc::new(tokens)),
    );
    let call = |method: &str, path: &str, token: &str, body: Option<serde_json::Value>| {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(axum::body::Body::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            ))
            .unwrap();
        let router = router.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default(),
            )
        }
    };
    let (status, body) = call("GET", "/api/v1/services", "tg_file_viewer", None).await;
    assert_eq!(
        (status, body["items"][0]["name"].as_str()),
        (200, Some("s"))
    );
    let (status, body) = call("GET", "/api/v1/status", "tg_file_viewer", None).await;
    assert_eq!(
        (status, &body["backend"], &body["read_only"]),
        (200, &json!("file"), &json!(true))
    );
    let (status, body) = call(
        "POST",
        "/api/v1/services",
        "tg_file_admin",
        Some(service("t")),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("read_only"))
    );
    let (status, body) = call("GET", "/api/v1/tokens", "tg_file_admin", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("read_only"))
    );
    let (status, _) = call("GET", "/api/v1/services", "tg_other", None).await;
    assert_eq!(status, 401);
    let (status, body) = call("GET", "/api/v1/audit", "tg_file_viewer", None).await;
    assert_eq!((status, &body["items"]), (200, &json!([])));
}
