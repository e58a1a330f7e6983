//! Export: documents written from configured APIs and from imported ones, checked with the
//! `openapi-spec-validator` Python package when the project venv (scripts/setup.sh) has it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use tollgate_model::{Api, Environment, Format, parse_config};
use tollgate_openapi::{ExportOptions, ImportOptions, export, import, select_apis};

const CONFIG: &str = r#"
services:
  - name: backend
    targets: [{url: "http://127.0.0.1:9000"}]
policies:
  - {name: cors, config: {allow_origins: ["*"]}}
apis:
  - name: users
    version: "2"
    group: accounts
    description: User accounts.
    base_path: /v2
    tags: [accounts]
    deprecation:
      prod: {at: "2030-01-01T00:00:00Z"}
    policies:
      - {name: key-auth, config: {header: X-Key}}
    routes:
      - {name: health, paths: ["= /health"], methods: [GET], service: backend,
         policies: [{name: key-auth, enabled: false}]}
      - {name: user, paths: ["/users/{id}"], methods: [GET, PUT], service: backend}
      - {name: user-delete, paths: ["/users/{uid}"], methods: [DELETE], service: backend}
      - {name: files, paths: ["/files/{*rest}"], methods: [GET], service: backend,
         policies: [{name: jwt}]}
      - {name: echo, paths: ["/echo"], service: backend}
      - {name: legacy, paths: ["~ ^/v[0-9]+/legacy"], methods: [GET], service: backend}
      - {name: twice, paths: ["= /a", "= /b"], methods: [POST], service: backend}
      - {name: odd, paths: ["= /odd"], methods: [PROPFIND], service: backend}
  - name: billing
    version: "1"
    group: accounts
    base_path: /billing
    routes:
      - {name: invoices, paths: ["= /invoices"], methods: [GET], service: backend,
         policies: [{name: basic-auth}, {name: hmac-auth}]}
"#;

fn config_apis() -> Vec<Api> {
    parse_config(CONFIG, Format::Yaml, "test.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .apis
        .into_iter()
        .map(std::sync::Arc::unwrap_or_clone)
        .collect()
}

/// Runs `python -m openapi_spec_validator` on the document. Skipped (with a note) when the venv
/// lacks the package, except under CI, where scripts/setup.sh has installed it.
fn assert_valid_openapi(name: &str, doc: &Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("TOLLGATE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let available = Command::new(&python)
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} cannot import openapi_spec_validator (tests/requirements.txt, scripts/setup.sh)",
            python.display()
        );
        eprintln!(
            "note: {name} not checked: {} has no openapi_spec_validator (run scripts/setup.sh)",
            python.display()
        );
        return;
    }
    let file = std::env::temp_dir().join(format!(
        "tollgate-openapi-{}-{name}.json",
        std::process::id()
    ));
    std::fs::write(&file, doc.to_string())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
    let out = Command::new(&python)
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{name} is not a valid OpenAPI 3.1 document:\n{}{}\n{doc:#}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn one_api_version_exports_routes_security_and_notes() {
    let apis = config_apis();
    let config = parse_config(CONFIG, Format::Yaml, "test.yaml").unwrap();
    let prod = Environment {
        name: "prod".to_owned(),
        hosts: vec!["api.example.com".to_owned(), "*.example.com".to_owned()],
        ..Environment::default()
    };
    let options = ExportOptions {
        policies: config.policies.clone(),
        ..ExportOptions::for_environment(&prod, "https")
    };
    let doc = export(&select_apis(&apis, "users", None), &options);
    assert_valid_openapi("users", &doc);

    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["info"],
        json!({"title": "users", "version": "2", "description": "User accounts."})
    );
    assert_eq!(
        doc["servers"],
        json!([{"url": "https://api.example.com/v2"}])
    );
    let paths = doc["paths"].as_object().unwrap();

    // Exact route: its path; a disabled key-auth leaves it public.
    let health = &paths["/health"]["get"];
    assert_eq!(health["operationId"], "health");
    assert!(health.get("security").is_none());
    assert_eq!(health["deprecated"], true);
    assert!(health.get("x-tollgate-path").is_none());

    // Template with two methods: one operation each, a declared path parameter, the API's key.
    let user = &paths["/users/{id}"];
    assert_eq!(user["get"]["operationId"], "user-get");
    assert_eq!(user["put"]["operationId"], "user-put");
    assert_eq!(
        user["get"]["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
    );
    assert_eq!(
        user["get"]["security"],
        json!([{"key-auth-header-X-Key": []}])
    );

    // Catch-all and prefix routes: the nearest path, the pattern in `x-tollgate-path`.
    let files = &paths["/files/{rest}"]["get"];
    assert_eq!(files["x-tollgate-path"], "/files/{*rest}");
    assert_eq!(
        files["security"],
        json!([{"key-auth-header-X-Key": [], "jwt": []}])
    );
    let echo = paths["/echo"].as_object().unwrap();
    assert_eq!(echo.len(), 8, "any method: every OpenAPI method");
    assert_eq!(echo["get"]["x-tollgate-path"], "/echo");

    // Several paths: one operation each, with distinct ids.
    assert_eq!(paths["/a"]["post"]["operationId"], "twice-post-1");
    assert_eq!(paths["/b"]["post"]["operationId"], "twice-post-2");

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["key-auth-header-X-Key"],
        json!({"type": "apiKey", "in": "header", "name": "X-Key",
               "description": "API key, checked by the gateway (key-auth policy).",
               "x-tollgate-policy": "key-auth"})
    );
    assert_eq!(schemes["jwt"]["scheme"], "bearer");

    // What cannot be written is listed, not dropped silently.
    let skipped = doc["x-tollgate-skipped"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = skipped
        .iter()
        .map(|s| (s["route"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("legacy", "a regular expression has no OpenAPI path"),
            ("odd", "OpenAPI 3.1 has no such operation method"),
        ]
    );
}

#[test]
fn a_group_exports_under_the_group_name_with_base_paths_in_the_paths() {
    let apis = config_apis();
    let group = select_apis(&apis, "accounts", None);
    assert_eq!(group.len(), 2);
    let doc = export(
        &group,
        &ExportOptions {
            servers: vec!["https://api.example.com".to_owned()],
            ..ExportOptions::default()
        },
    );
    assert_valid_openapi("accounts", &doc);
    assert_eq!(doc["info"]["title"], "accounts");
    assert_eq!(doc["info"]["version"], "users 2, billing 1");
    assert_eq!(doc["servers"], json!([{"url": "https://api.example.com"}]));
    assert!(doc["paths"].get("/v2/users/{id}").is_some());
    let invoices = &doc["paths"]["/billing/invoices"]["get"];
    assert_eq!(
        invoices["security"],
        json!([{"basic-auth": [], "hmac-auth": []}])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["hmac-auth"]["name"],
        "Signature"
    );
    // Not deprecated: no environment was named.
    assert!(invoices.get("deprecated").is_none());
}

#[test]
fn exported_patterns_import_back_as_the_same_paths() {
    let apis = config_apis();
    let users = select_apis(&apis, "users", Some("2"));
    let doc = export(&users, &ExportOptions::default());
    let back = import(&doc.to_string(), &ImportOptions::new("backend"))
        .unwrap()
        .api;
    assert_eq!(back.base_path.as_deref(), Some("/v2"));
    let paths_of = |api: &Api, route: &str| -> Vec<String> {
        api.routes
            .iter()
            .filter(|r| r.name == route)
            .flat_map(|r| r.paths.clone())
            .collect()
    };
    assert_eq!(paths_of(&back, "health"), ["= /health"]);
    assert_eq!(paths_of(&back, "user-get"), ["/users/{id}"]);
    assert_eq!(paths_of(&back, "files"), ["/files/{*rest}"]);
    assert_eq!(paths_of(&back, "echo-get"), ["/echo"]);
}

#[test]
fn sloppy_imported_operations_still_export_valid() {
    // Empty `responses`, an undeclared path parameter, a duplicate operationId.
    let doc = r#"
openapi: 3.0.3
info: {title: sloppy, version: "1"}
paths:
  /a/{id}: {get: {operationId: same, responses: {}}}
  /b: {get: {operationId: same, responses: {}}}
"#;
    let imported = import(doc, &ImportOptions::new("backend")).unwrap();
    assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
    let exported = export(&[&imported.api], &ExportOptions::default());
    assert_valid_openapi("sloppy", &exported);
    assert_eq!(exported["paths"]["/a/{id}"]["get"]["operationId"], "same");
    assert_eq!(exported["paths"]["/b"]["get"]["operationId"], "same-2");
}

#[test]
fn imported_documents_export_as_valid_openapi_31() {
    let documents = [
        ("petstore", include_str!("data/petstore.yaml")),
        ("bookshop", include_str!("data/bookshop-3.1.json")),
    ];
    for (name, text) in documents {
        let options = ImportOptions {
            auth_policies: true,
            ..ImportOptions::new("backend")
        };
        let api = import(text, &options).unwrap().api;
        let doc = export(
            &[&api],
            &ExportOptions {
                servers: vec!["https://api.example.com".to_owned()],
                ..ExportOptions::default()
            },
        );
        assert!(doc.get("x-tollgate-skipped").is_none(), "{name}: {doc:#}");
        assert_valid_openapi(name, &doc);
    }
}

#[test]
fn document_level_parts_are_exported_as_written() {
    let text = include_str!("data/bookshop-3.1.json");
    for auth_policies in [false, true] {
        let options = ImportOptions {
            auth_policies,
            ..ImportOptions::new("backend")
        };
        let api = import(text, &options).unwrap().api;
        let doc = export(&[&api], &ExportOptions::default());
        assert_valid_openapi("bookshop (kept parts)", &doc);
        assert_eq!(
            doc["info"],
            json!({
                "title": "Bookshop API",
                "version": "2.3.0",
                "description": "Books, authors and orders of an online bookshop.",
                "license": {"name": "Apache 2.0", "identifier": "Apache-2.0"}
            })
        );
        assert_eq!(
            doc["tags"][0],
            json!({"name": "books", "description": "The catalogue"})
        );
        assert_eq!(doc["security"], json!([{"apiKey": []}]));
        let schemes = &doc["components"]["securitySchemes"];
        // OAuth 2 is not enforced by the gateway: its scheme and requirement stay as written.
        assert_eq!(schemes["oauth"]["type"], "oauth2");
        let replace = &doc["paths"]["/books/{isbn}"]["put"];
        assert_eq!(replace["security"], json!([{"oauth": ["orders"]}]));
        // `security: []` (public) survives under the top-level requirement.
        assert_eq!(doc["paths"]["/books"]["get"]["security"], json!([]));
        let order = &doc["paths"]["/orders"]["post"]["security"];
        if auth_policies {
            // Enforced by key-auth: the policy's schemes, marked.
            assert_eq!(
                *order,
                json!([{"key-auth": []}, {"key-auth-query-api_key": []}])
            );
            assert_eq!(schemes["key-auth"]["x-tollgate-policy"], "key-auth");
        } else {
            assert_eq!(*order, json!([{"apiKey": []}, {"apiKeyQuery": []}]));
            assert!(schemes.get("key-auth").is_none());
        }
    }
}

#[test]
fn a_group_pushes_differing_document_security_down_to_operations() {
    let secured = import(
        include_str!("data/bookshop-3.1.json"),
        &ImportOptions {
            name: Some("books".to_owned()),
            ..ImportOptions::new("backend")
        },
    )
    .unwrap()
    .api;
    let mut open = import(
        include_str!("data/petstore.yaml"),
        &ImportOptions::new("backend"),
    )
    .unwrap()
    .api;
    let mut secured = secured;
    secured.group = Some("shop".to_owned());
    open.group = Some("shop".to_owned());
    let doc = export(&[&secured, &open], &ExportOptions::default());
    assert_valid_openapi("shop group", &doc);
    assert!(doc.get("security").is_none(), "{doc:#}");
    assert_eq!(doc["info"]["title"], "shop");
    // The bookshop's operations without their own security get its document's.
    let create = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find_map(|(_, item)| {
            item.as_object()?
                .values()
                .find(|op| op["operationId"] == "books.create")
        })
        .unwrap();
    assert_eq!(create["security"], json!([{"apiKey": []}]));
    assert!(
        doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.contains("pets"))
            .all(|(_, item)| item["get"].get("security").is_none())
    );
}
