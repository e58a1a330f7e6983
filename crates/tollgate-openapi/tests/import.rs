//! Importing realistic documents: the classic Petstore (3.0, YAML) and a 3.1 JSON document with
//! components, path-level parameters, request bodies and security schemes.

use serde_json::json;
use tollgate_model::{Api, Config, Route, Service, Target, validate};
use tollgate_openapi::{ImportError, ImportOptions, import};

const PETSTORE: &str = include_str!("data/petstore.yaml");
const BOOKSHOP: &str = include_str!("data/bookshop-3.1.json");

fn route<'a>(api: &'a Api, name: &str) -> &'a Route {
    api.routes
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no route {name}: {:?}", names(api)))
}

fn names(api: &Api) -> Vec<&str> {
    api.routes.iter().map(|r| r.name.as_str()).collect()
}

/// The imported API passes the model's validation next to its service.
fn assert_valid_config(api: &Api) {
    let config = Config {
        services: vec![Service {
            name: "backend".to_owned(),
            targets: vec![Target {
                url: "http://127.0.0.1:9000".to_owned(),
                weight: 1,
            }],
            protocol: Default::default(),
            timeouts: Default::default(),
            pool: Default::default(),
            tls: Default::default(),
            mock: None,
        }],
        apis: vec![api.clone().into()],
        ..Config::default()
    };
    if let Err(errors) = validate(&config) {
        panic!("imported API does not validate: {errors:?}");
    }
}

#[test]
fn petstore_becomes_one_exact_route_per_operation() {
    let imported = import(PETSTORE, &ImportOptions::new("backend")).unwrap();
    let api = &imported.api;
    assert_eq!(api.name, "swagger-petstore");
    assert_eq!(api.version, "1.0.0");
    assert_eq!(api.base_path.as_deref(), Some("/v1"));
    assert_eq!(api.tags, ["pets"]);
    assert_eq!(names(api), ["listPets", "createPets", "showPetById"]);

    let list = route(api, "listPets");
    assert_eq!(list.paths, ["= /pets"]);
    assert_eq!(list.methods, ["GET"]);
    assert_eq!(list.service, "backend");
    let op = list.operation.as_ref().unwrap();
    assert_eq!(op["parameters"][0]["name"], "limit");
    // `$ref`s are inlined: the array of pets and the Pet schema inside it.
    let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(schema["maxItems"], 100);
    assert_eq!(schema["items"]["required"], json!(["id", "name"]));
    assert!(!op.to_string().contains("$ref"), "{op}");

    let show = route(api, "showPetById");
    assert_eq!(show.paths, ["/pets/{petId}"]);
    assert_eq!(route(api, "createPets").methods, ["POST"]);
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert_valid_config(api);
}

#[test]
fn options_override_name_version_and_base_path() {
    let options = ImportOptions {
        name: Some("pets".to_owned()),
        version: Some("7".to_owned()),
        base_path: Some("/".to_owned()),
        ..ImportOptions::new("backend")
    };
    let api = import(PETSTORE, &options).unwrap().api;
    assert_eq!((api.name.as_str(), api.version.as_str()), ("pets", "7"));
    assert_eq!(api.base_path, None);
    let options = ImportOptions {
        base_path: Some("/store/".to_owned()),
        ..ImportOptions::new("backend")
    };
    assert_eq!(
        import(PETSTORE, &options).unwrap().api.base_path.as_deref(),
        Some("/store")
    );
}

#[test]
fn bookshop_31_keeps_resolved_operations() {
    let imported = import(BOOKSHOP, &ImportOptions::new("backend")).unwrap();
    let api = &imported.api;
    assert_eq!(api.name, "bookshop-api");
    assert_eq!(api.version, "2.3.0");
    assert_eq!(
        api.description.as_deref(),
        Some("Books, authors and orders of an online bookshop.")
    );
    // Server variables replaced by their defaults.
    assert_eq!(api.base_path.as_deref(), Some("/api/v2"));
    assert_eq!(api.tags, ["books", "orders"]);
    assert!(api.policies.is_empty());

    // Operation ids made into route names; one without gets method and path.
    assert_eq!(route(api, "books.create").paths, ["= /books"]);
    let delete = route(api, "delete-books-isbn");
    assert_eq!(delete.paths, ["/books/{isbn}"]);
    assert_eq!(delete.methods, ["DELETE"]);

    // Path-level parameters merged; the operation's own `isbn` replaces the shared one.
    let params = delete.operation.as_ref().unwrap()["parameters"]
        .as_array()
        .unwrap();
    assert_eq!(params.len(), 2);
    assert_eq!(params[0]["description"], "ISBN-10 or ISBN-13");
    assert_eq!(params[1]["name"], "If-Match");
    let get = route(api, "getBook").operation.as_ref().unwrap();
    assert_eq!(get["parameters"][0]["name"], "isbn");
    assert_eq!(get["parameters"][0]["in"], "path");

    // Request bodies and responses inlined, 3.1 `$ref` siblings applied.
    let create = route(api, "books.create").operation.as_ref().unwrap();
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["required"], json!(["isbn", "title"]));
    assert_eq!(
        body["properties"]["price"]["description"],
        "Price including VAT"
    );
    assert_eq!(
        body["properties"]["price"]["properties"]["amount"]["exclusiveMinimum"],
        0
    );
    assert_eq!(
        create["responses"]["default"]["description"],
        "Invalid book"
    );
    // Example data is copied, never resolved.
    let list = route(api, "listBooks").operation.as_ref().unwrap();
    let example = &list["responses"]["200"]["content"]["application/json"]["examples"]["one"];
    assert_eq!(example["value"][0]["$ref"], "not a reference: example data");

    // A recursive schema is expanded once, the inner reference marked.
    let tree = &route(api, "categoryTree").operation.as_ref().unwrap()["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        tree["properties"]["children"]["items"],
        json!({"x-tollgate-recursive": "#/components/schemas/Category"})
    );

    // A parameter inside a segment: a regular expression route; a name with '-': `_`.
    assert_eq!(
        route(api, "getCover").paths,
        [r"~ ^/books/(?P<isbn>[^/]+)/cover\.(?P<format>[^/]+)$"]
    );
    assert_eq!(
        route(api, "listBooksByAuthor").paths,
        ["/authors/{author_id}/books"]
    );
    // A Path Item given by `$ref`, and callbacks kept with their references inlined.
    assert_eq!(route(api, "getOrder").paths, ["/orders/{orderId}"]);
    let order = route(api, "placeOrder").operation.as_ref().unwrap();
    let callback = &order["callbacks"]["statusChanged"]["{$request.body#/callbackUrl}"]["post"];
    assert_eq!(
        callback["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["items"])
    );
    // Security not turned into policies stays in the operation as written (the service
    // checks it); the document's own `security` is kept with the API.
    assert_eq!(
        order["security"],
        json!([{"apiKey": []}, {"apiKeyQuery": []}])
    );
    assert!(
        route(api, "books.create")
            .operation
            .as_ref()
            .unwrap()
            .get("security")
            .is_none()
    );
    // The document-level parts, for export.
    let kept = api.openapi.as_ref().unwrap();
    assert_eq!(kept["info"]["title"], "Bookshop API");
    assert_eq!(kept["info"]["license"]["identifier"], "Apache-2.0");
    assert_eq!(
        kept["tags"][1]["description"],
        "Placing and following orders"
    );
    assert_eq!(kept["security"], json!([{"apiKey": []}]));
    assert_eq!(
        kept["components"]["securitySchemes"]["oauth"]["type"],
        "oauth2"
    );
    assert_eq!(
        kept.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["components", "info", "security", "tags"]
    );
    for r in &api.routes {
        assert!(r.policies.is_empty());
        assert!(
            !r.operation
                .as_ref()
                .unwrap()
                .to_string()
                .contains("\"$ref\":\"#")
        );
    }

    let warnings: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
    let expect = [
        "/webhooks: webhooks are requests the API sends",
        "/paths/~1books~1{isbn}~1cover.{format}: parameters inside a path segment",
        "/components/securitySchemes: security requirements were not turned into policies",
    ];
    for e in expect {
        assert!(
            warnings.iter().any(|w| w.starts_with(e)),
            "{e}: {warnings:#?}"
        );
    }
    assert_eq!(warnings.len(), expect.len(), "{warnings:#?}");
    assert_valid_config(api);
}

#[test]
fn security_schemes_become_policies_when_asked() {
    let options = ImportOptions {
        auth_policies: true,
        ..ImportOptions::new("backend")
    };
    let imported = import(BOOKSHOP, &options).unwrap();
    let api = &imported.api;
    let policies = |name: &str| -> Vec<(String, serde_json::Value)> {
        route(api, name)
            .policies
            .iter()
            .map(|p| (p.name.clone(), p.config.clone()))
            .collect()
    };
    // The document's requirement (header key; `X-Api-Key` is key-auth's default header).
    assert_eq!(
        policies("books.create"),
        [("key-auth".to_owned(), json!({}))]
    );
    // `security: []` is public.
    assert!(policies("listBooks").is_empty());
    // Header or query key: one key-auth with both.
    assert_eq!(
        policies("placeOrder"),
        [("key-auth".to_owned(), json!({"query_param": "api_key"}))]
    );
    assert_eq!(policies("getOrder"), [("jwt".to_owned(), json!({}))]);
    // OAuth 2 has no policy: the route stays unchecked, with a warning.
    assert!(policies("replaceBook").is_empty());
    let warning = imported
        .warnings
        .iter()
        .find(|w| w.pointer.as_str() == "/paths/~1books~1{isbn}/put")
        .unwrap();
    assert!(warning.message.contains("oauth2"), "{warning}");
    // Requirements that became policies leave the operation; the others stay as written.
    let kept = |name: &str| {
        route(api, name)
            .operation
            .as_ref()
            .unwrap()
            .get("security")
            .cloned()
    };
    assert_eq!(kept("placeOrder"), None);
    assert_eq!(kept("getOrder"), None);
    assert_eq!(kept("listBooks"), Some(json!([])));
    assert_eq!(kept("replaceBook"), Some(json!([{"oauth": ["orders"]}])));
    assert!(api.policies.is_empty());
    assert_valid_config(api);
}

#[test]
fn shared_requirements_become_api_policies() {
    let doc = PETSTORE.replace(
        "components:\n",
        "security: [{basic: []}]\ncomponents:\n  securitySchemes:\n    basic: {type: http, scheme: basic}\n",
    );
    let options = ImportOptions {
        auth_policies: true,
        ..ImportOptions::new("backend")
    };
    let api = import(&doc, &options).unwrap().api;
    assert_eq!(api.policies.len(), 1);
    assert_eq!(api.policies[0].name, "basic-auth");
    assert!(api.routes.iter().all(|r| r.policies.is_empty()));
}

#[test]
fn openapi_30_schemas_are_kept_in_31_form() {
    let doc = r#"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /n:
    get:
      parameters:
        - {name: n, in: query, schema: {type: integer, nullable: true, minimum: 0, exclusiveMinimum: true}}
      responses:
        200: {description: ok}
"#;
    let api = import(doc, &ImportOptions::new("backend")).unwrap().api;
    let op = api.routes[0].operation.as_ref().unwrap();
    assert_eq!(
        op["parameters"][0]["schema"],
        json!({"type": ["integer", "null"], "exclusiveMinimum": 0})
    );
    assert_eq!(api.routes[0].name, "get-n");
    assert_eq!(api.base_path, None);
}

#[test]
fn errors_name_the_json_pointer() {
    let error = |text: &str| import(text, &ImportOptions::new("backend")).unwrap_err();
    let doc = PETSTORE.replace(
        "      parameters:\n        - name: limit",
        "      parameters:\n        - $ref: '#/components/parameters/Nope'\n        - name: limit",
    );
    assert_eq!(
        error(&doc).to_string(),
        "/paths/~1pets/get/parameters/0: $ref #/components/parameters/Nope not found"
    );
    let doc = PETSTORE.replace("$ref: '#/components/schemas/Pet'", "$ref: 'pet.yaml#/Pet'");
    assert!(matches!(error(&doc), ImportError::ExternalRef { .. }));
    assert!(error(&doc).to_string().starts_with(
        "/paths/~1pets/post/requestBody/content/application~1json/schema: $ref pet.yaml#/Pet points outside the document"
    ));
    assert_eq!(
        error("openapi: 3.0.0\ninfo: {title: t, version: '1'}\n").to_string(),
        "/paths: missing: the document has no operations to import"
    );
    assert!(error("swagger: '2.0'").to_string().contains("Swagger 2.0"));
    assert!(matches!(
        error("openapi: [3.0"),
        ImportError::Syntax { format: "YAML", .. }
    ));
    let doc = PETSTORE.replace("  /pets:\n", "  pets:\n");
    assert_eq!(
        error(&doc).to_string(),
        "/paths/pets: a path must start with '/'"
    );
    let e = import(PETSTORE, &ImportOptions::new("no spaces")).unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Option {
                option: "service",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn operation_ids_are_made_valid_and_unique() {
    let doc = r#"
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /a: {get: {operationId: "get a", responses: {}}, post: {operationId: "get-a", responses: {}}}
  /b: {get: {responses: {}}, put: {operationId: "get-b", responses: {}}}
"#;
    let api = import(doc, &ImportOptions::new("backend")).unwrap().api;
    assert_eq!(names(&api), ["get-a", "get-a-2", "get-b-2", "get-b"]);
}

#[test]
fn yaml_output_is_a_config_fragment_with_warnings_as_comments() {
    let imported = import(BOOKSHOP, &ImportOptions::new("backend")).unwrap();
    let yaml = imported.to_config_yaml().unwrap();
    assert!(yaml.starts_with("# warning: "), "{yaml}");
    assert!(yaml.contains("\napis:\n"), "{yaml}");
    let config: Config = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(*config.apis[0], imported.api);
}
