use super::*;
use crate::testing::{build_error, ctx, ready, request, response, values};

fn cors(config: serde_json::Value) -> Arc<dyn Policy> {
    let policy = CorsFactory.build(&config).unwrap();
    assert_eq!(policy.phases(), Phases::ACCESS | Phases::RESPONSE);
    policy
}

/// Runs the access hook, then (unless it rejected) the response hook on `upstream` or on the
/// policy's own response, as the proxy would. Returns the final head or the rejection.
fn exchange(
    policy: &dyn Policy,
    method: &str,
    headers: &[(&str, &str)],
    upstream: response::Parts,
) -> Result<response::Parts, GatewayError> {
    let mut cx = ctx();
    let mut req = request(method, "/items", headers);
    let mut res = match ready(policy.access(&mut cx, &mut req)) {
        Outcome::Continue => upstream,
        Outcome::Respond(res) => res.map(|_| ()).into_parts().0,
        Outcome::Reject(e) => {
            // The response phase also runs on errors; it must leave them without CORS headers.
            let mut head = response(e.status.as_u16(), &[]);
            policy.response(&mut cx, &mut head);
            assert!(head.headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
            return Err(e);
        }
    };
    policy.response(&mut cx, &mut res);
    Ok(res)
}

fn preflight(
    policy: &dyn Policy,
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> Result<response::Parts, GatewayError> {
    let mut h = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if let Some(headers) = headers {
        h.push(("access-control-request-headers", headers));
    }
    exchange(policy, "OPTIONS", &h, response(200, &[]))
}

fn header<'a>(res: &'a response::Parts, name: &str) -> Option<&'a str> {
    res.headers.get(name).map(|v| v.to_str().unwrap())
}

const APP: &str = "https://app.example.com";

fn app_only() -> Arc<dyn Policy> {
    cors(serde_json::json!({
        "allow_origins": [APP, "https://*.example.org"],
        "allow_credentials": true,
        "expose_headers": ["X-Request-Id", "x-total"],
        "max_age": "1h",
    }))
}

#[test]
fn allowed_preflight_is_answered_with_204_and_every_cors_header() {
    let res = preflight(&*app_only(), APP, "PUT", Some("Content-Type, X-Trace")).unwrap();
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&res, "access-control-allow-methods"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
    );
    assert_eq!(
        header(&res, "access-control-allow-headers"),
        Some("content-type, x-trace")
    );
    assert_eq!(header(&res, "access-control-max-age"), Some("3600"));
    assert_eq!(
        values(&res.headers, "vary"),
        ["Origin, Access-Control-Request-Method, Access-Control-Request-Headers"]
    );
    // Exposed headers are for actual responses only.
    assert!(res.headers.get("access-control-expose-headers").is_none());
}

#[test]
fn preflight_from_a_subdomain_pattern_echoes_that_origin() {
    let res = preflight(&*app_only(), "https://a.b.example.org", "GET", None).unwrap();
    assert_eq!(
        header(&res, "access-control-allow-origin"),
        Some("https://a.b.example.org")
    );
    assert!(res.headers.get("access-control-allow-headers").is_none());
}

#[test]
fn preflight_from_a_disallowed_origin_is_rejected_with_403() {
    let err = preflight(&*app_only(), "https://evil.test", "GET", None).unwrap_err();
    assert_eq!(err.status, StatusCode::FORBIDDEN);
    assert_eq!(err.code, "cors_rejected");
    assert!(err.message.contains("evil.test"), "{}", err.message);
}

#[test]
fn preflight_for_a_disallowed_method_or_header_is_rejected() {
    let policy = cors(serde_json::json!({
        "allow_origins": [APP],
        "allow_methods": ["GET", "POST"],
        "allow_headers": ["Content-Type", "Authorization"],
    }));
    let err = preflight(&*policy, APP, "DELETE", None).unwrap_err();
    assert!(err.message.contains("DELETE"), "{}", err.message);
    let err = preflight(&*policy, APP, "POST", Some("content-type, x-secret")).unwrap_err();
    assert!(err.message.contains("x-secret"), "{}", err.message);
    let err = preflight(&*policy, APP, "POST", Some("bad header")).unwrap_err();
    assert_eq!(err.code, "cors_rejected");

    let res = preflight(&*policy, APP, "POST", Some("Authorization,CONTENT-TYPE")).unwrap();
    assert_eq!(
        header(&res, "access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        header(&res, "access-control-allow-headers"),
        Some("content-type, authorization")
    );
    assert!(
        res.headers
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[test]
fn star_methods_and_headers_reflect_the_request() {
    let policy = cors(serde_json::json!({
        "allow_origins": ["*"],
        "allow_methods": ["*"],
        "allow_headers": ["*"],
    }));
    let res = preflight(&*policy, "https://any.test", "PROPFIND", Some("x-a")).unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), Some("*"));
    assert_eq!(
        header(&res, "access-control-allow-methods"),
        Some("PROPFIND")
    );
    assert_eq!(header(&res, "access-control-allow-headers"), Some("x-a"));
}

#[test]
fn preflight_continue_leaves_the_preflight_to_the_upstream() {
    let policy = cors(serde_json::json!({"allow_origins": [APP], "preflight_continue": true}));
    let upstream = response(200, &[("allow", "GET")]);
    let res = preflight(&*policy, "https://evil.test", "GET", None).unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.headers.get("access-control-allow-origin").is_none());
    let res = exchange(
        &*policy,
        "OPTIONS",
        &[("origin", APP), ("access-control-request-method", "GET")],
        upstream,
    )
    .unwrap();
    assert_eq!(values(&res.headers, "allow"), ["GET"]);
    assert!(res.headers.get("vary").is_none());
}

#[test]
fn options_without_request_method_is_an_actual_request() {
    let res = exchange(
        &*app_only(),
        "OPTIONS",
        &[("origin", APP)],
        response(200, &[]),
    )
    .unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
}

#[test]
fn allowed_actual_request_gets_origin_credentials_expose_and_vary() {
    let upstream = response(200, &[("vary", "Accept-Encoding")]);
    let res = exchange(&*app_only(), "GET", &[("origin", APP)], upstream).unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&res, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&res, "access-control-expose-headers"),
        Some("x-request-id, x-total")
    );
    assert_eq!(values(&res.headers, "vary"), ["Accept-Encoding, Origin"]);
}

#[test]
fn error_responses_raised_after_cors_still_carry_cors_headers() {
    let policy = app_only();
    let mut cx = ctx();
    let mut req = request("GET", "/items", &[("origin", APP)]);
    assert!(matches!(
        ready(policy.access(&mut cx, &mut req)),
        Outcome::Continue
    ));
    // A later policy rejects with 401; the proxy renders it and runs the response phase.
    let mut res = response(401, &[("content-type", "application/json")]);
    policy.response(&mut cx, &mut res);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
}

#[test]
fn disallowed_actual_request_passes_without_cors_headers() {
    let upstream = response(
        200,
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-secret"),
        ],
    );
    let res = exchange(
        &*app_only(),
        "POST",
        &[("origin", "https://evil.test")],
        upstream,
    )
    .unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.headers.get("access-control-allow-origin").is_none());
    assert!(
        res.headers
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert!(res.headers.get("access-control-expose-headers").is_none());
    assert_eq!(values(&res.headers, "vary"), ["Origin"]);
}

#[test]
fn upstream_cors_headers_cannot_widen_the_policy() {
    let policy = cors(serde_json::json!({"allow_origins": [APP]}));
    let upstream = response(
        200,
        &[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
        ],
    );
    let res = exchange(&*policy, "GET", &[("origin", APP)], upstream).unwrap();
    assert_eq!(values(&res.headers, "access-control-allow-origin"), [APP]);
    assert!(
        res.headers
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[test]
fn request_without_origin_gets_only_vary() {
    let res = exchange(&*app_only(), "GET", &[], response(200, &[])).unwrap();
    assert!(res.headers.get("access-control-allow-origin").is_none());
    assert_eq!(values(&res.headers, "vary"), ["Origin"]);
}

#[test]
fn any_origin_without_credentials_answers_star_and_does_not_vary() {
    let policy = cors(serde_json::json!({"allow_origins": ["*"]}));
    let res = exchange(&*policy, "GET", &[("origin", APP)], response(200, &[])).unwrap();
    assert_eq!(header(&res, "access-control-allow-origin"), Some("*"));
    assert!(res.headers.get("vary").is_none());
}

#[test]
fn vary_merges_with_existing_values() {
    let mut headers = HeaderMap::new();
    headers.append(VARY, HeaderValue::from_static("accept"));
    headers.append(VARY, HeaderValue::from_static("accept-language"));
    vary_on_origin(&mut headers);
    assert_eq!(
        values(&headers, "vary"),
        ["accept, accept-language, Origin"]
    );

    for already in ["*", "Accept, origin", "ORIGIN"] {
        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static(already));
        vary_on_origin(&mut headers);
        assert_eq!(values(&headers, "vary"), [already]);
    }
}

#[test]
fn mocked_responses_get_cors_headers_too() {
    let policy = app_only();
    let mut cx = ctx();
    let mut req = request("GET", "/items", &[("origin", APP)]);
    ready(policy.access(&mut cx, &mut req));
    let mut res = response(200, &[("content-type", "application/json")]);
    policy.response(&mut cx, &mut res);
    assert_eq!(header(&res, "access-control-allow-origin"), Some(APP));
}

#[test]
fn defaults_need_only_origins() {
    let policy = Cors::new(
        &parse_policy_config::<Config>(&serde_json::json!({"allow_origins": [APP]})).unwrap(),
    )
    .unwrap();
    assert!(!policy.credentials);
    assert!(!policy.preflight_continue);
    assert_eq!(policy.max_age, "600");
    assert!(matches!(policy.headers, Allowed::Reflect));
    assert!(policy.expose_headers.is_none());
}

#[test]
fn star_origin_with_credentials_is_refused_citing_the_standard() {
    let err = build_error(
        &CorsFactory,
        serde_json::json!({"allow_origins": ["*"], "allow_credentials": true}),
    );
    assert_eq!(err.path.to_string(), "allow_origins[0]");
    assert!(err.message.contains("Fetch standard"), "{}", err.message);
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (serde_json::json!({}), "allow_origins"),
        (
            serde_json::json!({"allow_origins": [APP, "https://b.com", "https://c.com/"]}),
            "allow_origins[2]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_origin_regex": ["("]}),
            "allow_origin_regex[0]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_methods": []}),
            "allow_methods",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_methods": ["GET", "get"]}),
            "allow_methods[1]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_methods": ["GET", "B@D"]}),
            "allow_methods[1]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_methods": ["GET", "*"]}),
            "allow_methods[1]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_headers": ["x-a", "bad name"]}),
            "allow_headers[1]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_headers": ["x-a", "*"]}),
            "allow_headers[1]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "expose_headers": ["x-a", "b c"]}),
            "expose_headers[1]",
        ),
        (
            serde_json::json!({
                "allow_origins": [APP], "allow_credentials": true, "expose_headers": ["*"]
            }),
            "expose_headers[0]",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "max_age": "soon"}),
            "max_age",
        ),
        (
            serde_json::json!({"allow_origins": [APP], "allow_origin": [APP]}),
            "allow_origin",
        ),
    ];
    for (config, path) in cases {
        let err = build_error(&CorsFactory, config.clone());
        assert_eq!(err.path.to_string(), path, "{config}: {}", err.message);
    }
}

#[test]
fn expose_star_is_allowed_without_credentials() {
    let policy = cors(serde_json::json!({"allow_origins": ["*"], "expose_headers": ["*"]}));
    let res = exchange(&*policy, "GET", &[("origin", APP)], response(200, &[])).unwrap();
    assert_eq!(header(&res, "access-control-expose-headers"), Some("*"));
}
