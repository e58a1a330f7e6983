//! The OpenAPI schemas of the model's wire types are written by hand in
//! `src/schema/` (the model crate does not depend on utoipa). These tests keep them in step:
//! a fully populated value of each model type (every optional field set, every list
//! non-empty) must validate against its schema, and must use exactly the properties the
//! schema declares. A field added to the model breaks the struct literals here first; add it
//! to the sample and to the schema mirror.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tollgate_model::{
    Api, Certificate, CertificateFile, Config, Consumer, Credential, Deprecation, Environment,
    Grant, HeaderMatch, HostPolicy, Listen, MockBackend, PolicySpec, Protocol, QueryMatch, Rewrite,
    Route, ServerConfig, Service, Target, Timestamp, TlsConfig, TlsVersion, UpstreamTls,
};
use tollgate_store::{Release, ReleaseAction};

fn doc() -> Value {
    serde_json::from_str(&tollgate_admin::openapi_json()).unwrap()
}

/// Validates `value` against `#/components/schemas/{name}`.
fn check(doc: &Value, name: &str, value: &Value) {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {value}\n{}", errors.join("\n"));
}

/// Asserts the object schema `schema` declares exactly the keys of `value`.
fn same_properties(what: &str, schema: &Value, value: &Value) {
    let declared: BTreeSet<&String> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object schema: {schema}"))
        .keys()
        .collect();
    let used: BTreeSet<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(declared, used, "{what}: schema properties vs. model fields");
}

fn properties(doc: &Value, name: &str, value: &Value) {
    check(doc, name, value);
    same_properties(name, &doc["components"]["schemas"][name], value);
}

fn at() -> Timestamp {
    Timestamp::parse("2030-01-01T00:00:00Z").unwrap()
}

fn policy() -> PolicySpec {
    PolicySpec {
        name: "cors".into(),
        config: json!({"allow_origins": ["*"]}),
        enabled: false,
    }
}

fn service() -> Service {
    Service {
        name: "s".into(),
        targets: vec![Target {
            url: "http://127.0.0.1:1".into(),
            weight: 2,
        }],
        protocol: Protocol::Http2,
        timeouts: Default::default(),
        pool: Default::default(),
        tls: UpstreamTls {
            ca: Some("/ca.pem".into()),
            sni: Some("example.com".into()),
            insecure_skip_verify: true,
        },
        mock: Some(MockBackend {
            status: 201,
            headers: BTreeMap::from([("x-a".into(), "b".into())]),
            body: "hi".into(),
            echo: true,
        }),
    }
}

fn route() -> Route {
    Route {
        name: "r".into(),
        paths: vec!["/users/{id}".into()],
        methods: vec!["GET".into()],
        hosts: vec!["a.example.com".into()],
        headers: vec![HeaderMatch {
            name: "x-a".into(),
            value: Some("1".into()),
            regex: Some("^1$".into()),
            present: Some(true),
        }],
        query: vec![QueryMatch {
            name: "q".into(),
            value: Some("1".into()),
            regex: Some("^1$".into()),
            present: Some(true),
        }],
        priority: 3,
        service: "s".into(),
        rewrite: Some(Rewrite {
            strip_prefix: true,
            replace_prefix: Some("/v2".into()),
            template: Some("/x/{id}".into()),
        }),
        host_header: HostPolicy::Upstream,
        policies: vec![policy()],
        operation: Some(json!({"operationId": "getUser"})),
    }
}

fn api(lifecycle: bool) -> Api {
    Api {
        name: "a".into(),
        version: "2".into(),
        description: Some("d".into()),
        group: Some("g".into()),
        tags: vec!["t".into()],
        publish: lifecycle.then(|| vec!["prod".into()]),
        deprecation: if lifecycle {
            BTreeMap::from([(
                "prod".into(),
                Deprecation {
                    at: at(),
                    sunset: Some(at()),
                    link: Some("https://example.com".into()),
                },
            )])
        } else {
            BTreeMap::new()
        },
        hosts: vec!["api.example.com".into()],
        base_path: Some("/v1".into()),
        policies: vec![policy()],
        routes: vec![route()].into(),
        openapi: Some(json!({"info": {"title": "A", "version": "2"}})),
    }
}

fn credentials() -> Vec<Credential> {
    vec![
        Credential::KeyAuth {
            id: "k".into(),
            key: Some("clear".into()),
            key_sha256: Some("0".repeat(64)),
        },
        Credential::BasicAuth {
            id: "b".into(),
            username: "u".into(),
            password: Some("p".into()),
            password_hash: Some("$argon2id$...".into()),
        },
        Credential::Hmac {
            id: "h".into(),
            secret: Some("s".into()),
            secret_encrypted: Some("v1:...".into()),
        },
        Credential::Jwt {
            id: "j".into(),
            issuer: "iss".into(),
            algorithm: "HS256".into(),
            public_key: Some("PEM".into()),
            secret: Some("s".into()),
            secret_encrypted: Some("v1:...".into()),
        },
    ]
}

fn consumer() -> Consumer {
    Consumer {
        name: "c".into(),
        description: Some("d".into()),
        tags: vec!["t".into()],
        groups: vec!["g".into()],
        credentials: credentials(),
        policies: vec![policy()],
        grants: vec![Grant {
            api: "a".into(),
            environments: vec!["prod".into()],
        }],
    }
}

fn environment() -> Environment {
    Environment {
        name: "prod".into(),
        description: Some("d".into()),
        hosts: vec!["example.com".into()],
        header_selection: true,
        variables: BTreeMap::from([("backend".into(), "http://127.0.0.1:1".into())]),
    }
}

fn server() -> ServerConfig {
    ServerConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
        ..ServerConfig::default()
    }
}

fn to(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

#[test]
fn service_schemas_match_the_model() {
    let doc = doc();
    let s = to(service());
    properties(&doc, "Service", &s);
    properties(&doc, "Target", &s["targets"][0]);
    properties(&doc, "UpstreamTimeouts", &s["timeouts"]);
    properties(&doc, "Pool", &s["pool"]);
    properties(&doc, "UpstreamTls", &s["tls"]);
    properties(&doc, "MockBackend", &s["mock"]);
    check(&doc, "Duration", &json!(5));
}

#[test]
fn api_schemas_match_the_model() {
    let doc = doc();
    let a = to(api(false));
    properties(&doc, "Api", &a);
    properties(&doc, "Route", &a["routes"][0]);
    properties(&doc, "HeaderMatch", &a["routes"][0]["headers"][0]);
    properties(&doc, "QueryMatch", &a["routes"][0]["query"][0]);
    properties(&doc, "Rewrite", &a["routes"][0]["rewrite"]);
    properties(&doc, "PolicySpec", &a["policies"][0]);
    let full = to(api(true));
    properties(&doc, "ConfigApi", &full);
    properties(&doc, "Deprecation", &full["deprecation"]["prod"]);
}

#[test]
fn consumer_schemas_match_the_model() {
    let doc = doc();
    let c = to(consumer());
    properties(&doc, "Consumer", &c);
    properties(&doc, "Grant", &c["grants"][0]);
    let variants = doc["components"]["schemas"]["Credential"]["oneOf"]
        .as_array()
        .unwrap();
    for credential in c["credentials"].as_array().unwrap() {
        check(&doc, "Credential", credential);
        let variant = variants
            .iter()
            .find(|v| v["properties"]["type"]["enum"][0] == credential["type"])
            .unwrap_or_else(|| panic!("no schema variant for {credential}"));
        same_properties(
            &format!("Credential {}", credential["type"]),
            variant,
            credential,
        );
    }
}

#[test]
fn settings_environment_and_config_schemas_match_the_model() {
    let doc = doc();
    let s = to(server());
    properties(&doc, "ServerConfig", &s);
    properties(&doc, "Timeouts", &s["timeouts"]);
    properties(&doc, "Limits", &s["limits"]);
    properties(&doc, "PathNormalization", &s["path_normalization"]);
    properties(&doc, "RequestIdConfig", &s["request_id"]);
    properties(&doc, "AccessLog", &s["access_log"]);
    properties(&doc, "Environment", &to(environment()));
    let config = Config {
        listen: Listen {
            status: Some("127.0.0.1:8082".parse().unwrap()),
            ..Listen::default()
        },
        server: server(),
        tls: TlsConfig {
            certificates: vec![CertificateFile {
                cert: "/c.pem".into(),
                key: "/k.pem".into(),
                hosts: vec!["example.com".into()],
            }],
            min_version: TlsVersion::V1_3,
        },
        services: vec![service()],
        apis: vec![api(true).into()],
        policies: vec![policy()],
        environments: vec![environment()],
        consumers: vec![consumer()],
        certificates: vec![Certificate {
            name: "site".into(),
            description: Some("d".into()),
            tags: vec!["t".into()],
            cert: "-----BEGIN CERTIFICATE-----".into(),
            key: Some("-----BEGIN PRIVATE KEY-----".into()),
            key_encrypted: Some("v1:...".into()),
            hosts: vec!["example.com".into()],
        }],
    };
    let c = to(config);
    properties(&doc, "Config", &c);
    properties(&doc, "Listen", &c["listen"]);
    properties(&doc, "TlsConfig", &c["tls"]);
    properties(&doc, "CertificateFile", &c["tls"]["certificates"][0]);
    properties(&doc, "Certificate", &c["certificates"][0]);
}

#[test]
fn release_schema_matches_the_store() {
    let doc = doc();
    let release = Release {
        id: 3,
        api: "a".into(),
        environment: "prod".into(),
        version: Some("2".into()),
        action: ReleaseAction::Rollback,
        restores: Some(1),
        note: Some("n".into()),
        actor: "ops".into(),
        at: at(),
    };
    properties(&doc, "Release", &to(release));
}
