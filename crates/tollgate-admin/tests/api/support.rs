//! A control over a temporary SQLite store, the admin router in front of it, one token per
//! role, and a small request builder so tests read as specifications.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tollgate_admin::AdminState;
use tollgate_admin::control::{ConfigValidator, Control};
use tollgate_model::{Config, Diagnostic, Listen};
use tollgate_store::secrets::{SecretKey, sha256_hex};
use tollgate_store::{AuditQuery, Feed, Role, Store, TokenRecord};
use tower::ServiceExt;

/// Validates like configuration files, without plugins.
pub(crate) struct ModelValidator;

impl ConfigValidator for ModelValidator {
    fn validate(&self, config: &Config) -> Result<(), Vec<Diagnostic>> {
        tollgate_model::validate(config)
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A store, a control and the admin router.
pub(crate) struct Harness {
    pub(crate) router: Router,
    pub(crate) store: Store,
    pub(crate) admin: String,
    pub(crate) operator: String,
    pub(crate) viewer: String,
    dir: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn key() -> Arc<SecretKey> {
    Arc::new(SecretKey::from_bytes(&[7; 32]).unwrap())
}

impl Harness {
    pub(crate) async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-admin-api-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite:{}/tollgate.db", dir.display()))
            .await
            .unwrap();
        let feed = Feed::open(store.clone()).await.unwrap();
        let control = Arc::new(Control::with_store(
            feed,
            key(),
            Arc::new(ModelValidator),
            Listen::default(),
        ));
        let mut tokens = Vec::new();
        for role in [Role::Admin, Role::Operator, Role::Viewer] {
            let secret = format!("tg_test_{}_{}", role.as_str(), dir.display());
            store
                .create_token(&TokenRecord {
                    id: format!("id-{}", role.as_str()),
                    name: format!("{}-token", role.as_str()),
                    role,
                    hash: sha256_hex(&secret),
                    created_at: 1,
                    created_by: "test".into(),
                })
                .await
                .unwrap();
            tokens.push(secret);
        }
        let router = tollgate_admin::router(
            AdminState::new(
                Arc::new(Registry::default()),
                Arc::new(AtomicBool::new(true)),
            )
            .with_api(Some(control.clone()), Some(store.clone())),
        );
        let [admin, operator, viewer]: [String; 3] = tokens.try_into().unwrap();
        Self {
            router,
            store,
            admin,
            operator,
            viewer,
            dir,
        }
    }

    /// A call with the admin token.
    pub(crate) fn call(&self, method: &str, path: &str) -> Call<'_> {
        Call {
            router: &self.router,
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            path: path.to_owned(),
            token: Some(self.admin.clone()),
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Reply {
        self.call("GET", path).send().await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path).json(body).send().await
    }

    pub(crate) async fn put(&self, path: &str, body: Value) -> Reply {
        self.call("PUT", path).json(body).send().await
    }

    pub(crate) async fn delete(&self, path: &str) -> Reply {
        self.call("DELETE", path).send().await
    }

    /// The store revision and the number of audit entries: unchanged means nothing was
    /// written.
    pub(crate) async fn written(&self) -> (i64, usize) {
        let revision = self.store.revision().await.unwrap();
        let audit = self
            .store
            .audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        (revision, audit.len())
    }

    /// Asserts a call fails with `status` and `code` and writes nothing.
    pub(crate) async fn refused(&self, call: Call<'_>, status: u16, code: &str) -> Reply {
        let before = self.written().await;
        let reply = call.send().await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_eq!(reply.code(), code, "{reply:?}");
        assert_eq!(
            self.written().await,
            before,
            "nothing may be written: {reply:?}"
        );
        reply
    }
}

/// A request being built.
pub(crate) struct Call<'a> {
    router: &'a Router,
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl Call<'_> {
    pub(crate) fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub(crate) fn no_token(mut self) -> Self {
        self.token = None;
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn json(self, value: Value) -> Self {
        self.raw("application/json", &value.to_string())
    }

    pub(crate) fn raw(mut self, content_type: &str, text: &str) -> Self {
        self.body = Some((content_type.to_owned(), text.as_bytes().to_vec()));
        self
    }

    pub(crate) async fn send(self) -> Reply {
        let mut request = Request::builder().method(self.method).uri(&self.path);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let body = match self.body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }
}

/// A response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Reply {
    /// The error code, or "" for a success.
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error's field, or "".
    pub(crate) fn field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }

    pub(crate) fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub(crate) fn etag(&self) -> String {
        self.header("etag").to_owned()
    }

    /// Names of the items of a page.
    pub(crate) fn names(&self) -> Vec<String> {
        self.body["items"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    #[track_caller]
    pub(crate) fn ok(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{self:?}");
        self
    }
}

/// A service forwarding to a local address.
pub(crate) fn service(name: &str) -> Value {
    json!({"name": name, "targets": [{"url": "http://127.0.0.1:9"}]})
}

/// An API version with one route to `service`.
pub(crate) fn api(name: &str, version: &str, path: &str, service: &str) -> Value {
    json!({
        "name": name,
        "version": version,
        "routes": [{"name": "r", "paths": [path], "service": service}],
    })
}
