use super::*;
use crate::testing::{build_error, ctx, ready, request, values};

fn respond(config: serde_json::Value) -> Response<ProxyBody> {
    let policy = MockFactory.build(&config).unwrap();
    assert_eq!(policy.phases(), Phases::ACCESS);
    let mut cx = ctx();
    let mut req = request("GET", "/anything", &[]);
    match ready(policy.access(&mut cx, &mut req)) {
        Outcome::Respond(res) => res,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn body(res: &Response<ProxyBody>) -> &[u8] {
    match res.body() {
        ProxyBody::Empty => b"",
        ProxyBody::Full(Some(bytes)) => bytes,
        other => panic!("unexpected body {other:?}"),
    }
}

#[test]
fn empty_config_answers_200_without_body() {
    let res = respond(serde_json::json!({}));
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().is_empty());
    assert_eq!(body(&res), b"");
}

#[test]
fn json_body_is_serialized_once_with_content_type() {
    let res = respond(serde_json::json!({
        "status": 201,
        "headers": {"x-mock": ["a", "b"]},
        "json": {"id": 7, "tags": ["x"]},
    }));
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(values(res.headers(), "content-type"), ["application/json"]);
    assert_eq!(values(res.headers(), "x-mock"), ["a", "b"]);
    let parsed: serde_json::Value = serde_json::from_slice(body(&res)).unwrap();
    assert_eq!(parsed, serde_json::json!({"id": 7, "tags": ["x"]}));
}

#[test]
fn json_null_is_a_body() {
    let res = respond(serde_json::json!({"json": null}));
    assert_eq!(body(&res), b"null");
}

#[test]
fn text_body_defaults_to_plain_text_but_keeps_a_given_type() {
    let res = respond(serde_json::json!({"body": "hello"}));
    assert_eq!(body(&res), b"hello");
    assert_eq!(
        values(res.headers(), "content-type"),
        ["text/plain; charset=utf-8"]
    );
    let res = respond(serde_json::json!({
        "body": "<p>hi</p>",
        "headers": {"Content-Type": "text/html"},
    }));
    assert_eq!(values(res.headers(), "content-type"), ["text/html"]);
}

#[test]
fn each_request_gets_the_same_response() {
    let policy = MockFactory
        .build(&serde_json::json!({"body": "same"}))
        .unwrap();
    for _ in 0..2 {
        let mut cx = ctx();
        let mut req = request("POST", "/", &[]);
        let Outcome::Respond(res) = ready(policy.access(&mut cx, &mut req)) else {
            panic!("expected a response");
        };
        assert_eq!(body(&res), b"same");
    }
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (serde_json::json!({"status": 99}), "status"),
        (serde_json::json!({"status": 101}), "status"),
        (serde_json::json!({"status": 1000}), "status"),
        (serde_json::json!({"body": "a", "json": {}}), "json"),
        (serde_json::json!({"status": 204, "body": "a"}), "body"),
        (serde_json::json!({"status": 304, "json": 1}), "json"),
        (
            serde_json::json!({"headers": {"content-length": "5"}}),
            "headers.content-length",
        ),
        (
            serde_json::json!({"headers": {"x-a": "bad\u{1}"}}),
            "headers.x-a",
        ),
        (serde_json::json!({"body": 5}), "body"),
        (serde_json::json!({"bodyy": "a"}), "bodyy"),
    ];
    for (config, path) in cases {
        let err = build_error(&MockFactory, config.clone());
        assert_eq!(err.path.to_string(), path, "{config}: {}", err.message);
    }
}

#[test]
fn status_204_without_body_is_fine() {
    let res = respond(serde_json::json!({"status": 204}));
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers().get("content-type").is_none());
}
