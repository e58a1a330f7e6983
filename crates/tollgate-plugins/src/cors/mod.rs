//! `cors`: Cross-Origin Resource Sharing per the Fetch standard (access and response phases,
//! priority 2000 — the highest built-in, so a preflight is answered before authentication,
//! which browsers never send credentials to).
//!
//! ```yaml
//! - name: cors
//!   config:
//!     allow_origins: ["https://app.example.com", "https://*.example.com"]  # or ["*"]
//!     allow_origin_regex: ['https://pr-\d+\.preview\.example\.com']
//!     allow_methods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]  # the default; or ["*"]
//!     allow_headers: []        # default: reflect Access-Control-Request-Headers; or ["*"]
//!     expose_headers: [x-request-id]
//!     allow_credentials: false
//!     max_age: 10m             # the default; sent in whole seconds
//!     preflight_continue: false
//! ```
//!
//! **Preflight** (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): when the origin,
//! the method and every requested header are allowed, the policy answers `204` with
//! `Access-Control-Allow-Origin`, `-Allow-Methods`, `-Allow-Headers`, `-Max-Age`,
//! `-Allow-Credentials` (when enabled) and `Vary: Origin, Access-Control-Request-Method,
//! Access-Control-Request-Headers`. Otherwise it rejects with `403 cors_rejected`, whose JSON
//! message says what was refused; the rejection carries no CORS headers, so the browser fails
//! the preflight (a 204 without them would fail it too, but say less to the developer). With
//! `preflight_continue: true` preflights go to the upstream untouched and it answers them.
//!
//! **Other requests with `Origin`**: the access hook decides and leaves the decision in the
//! request's extensions; the response hook — run on every response, including errors raised by
//! later policies, so a browser can read a 401 — applies it. An allowed origin gets
//! `Access-Control-Allow-Origin` (`*` only when every origin is allowed without credentials,
//! else the request's origin), `-Allow-Credentials` and `-Expose-Headers`. A disallowed origin
//! is passed through without CORS headers and the browser hides the response from the page.
//! The policy is authoritative: CORS headers the upstream set are replaced or removed, so an
//! upstream cannot widen what the gateway allows. Whenever the answer depends on the origin,
//! `Origin` is merged into `Vary` on every response, with or without an `Origin` request header,
//! so shared caches keep the variants apart.
//!
//! Routing happens before policies: for preflights to reach this policy, the route must accept
//! `OPTIONS` (or the policy must be attached where `OPTIONS` is routed).

mod origin;

use std::sync::Arc;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, request, response};
use serde::Deserialize;
use tollgate_model::Duration;
use tollgate_plugin_api::{
    GatewayError, Hook, Outcome, Phases, Policy, PolicyConfigError, PolicyFactory, ProxyBody,
    RequestCtx, parse_policy_config,
};

use crate::config::{field, header_name};
use origin::AllowedOrigins;

/// The plugin name in configuration.
pub const NAME: &str = "cors";
/// Default chain position: first of all, so preflights never meet authentication.
pub const PRIORITY: i32 = 2000;

/// CORS rules. See the [module documentation](self) for the behaviour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Allowed origins: exact (`https://a.com`), subdomain patterns (`https://*.a.com`), or `*`.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Allowed origins as regular expressions matching the whole origin.
    #[serde(default)]
    pub allow_origin_regex: Vec<String>,
    /// Methods a preflight may ask for; `["*"]` allows any.
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Headers a preflight may ask for; empty or `["*"]` reflects whatever is asked.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers the page may read beyond the CORS-safelisted ones.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Whether the page may send and read credentials (cookies, HTTP authentication).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer (browsers cap it: Chromium at 2 hours).
    #[serde(default = "default_max_age")]
    pub max_age: Duration,
    /// Forward preflights to the upstream instead of answering them.
    #[serde(default)]
    pub preflight_continue: bool,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .map(str::to_owned)
        .to_vec()
}

fn default_max_age() -> Duration {
    Duration::from_secs(600)
}

/// Builds [`Cors`] policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorsFactory;

impl PolicyFactory for CorsFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn priority(&self) -> i32 {
        PRIORITY
    }

    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError> {
        Ok(Arc::new(Cors::new(&parse_policy_config(config)?)?))
    }
}

/// The CORS policy, with every constant header value precomputed.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: AllowedOrigins,
    methods: Allowed<Method>,
    headers: Allowed<HeaderName>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
    preflight_continue: bool,
}

/// An allowlist of methods or header names: anything (answer with what was asked), or these
/// (answer with the precomputed comma-separated list).
#[derive(Debug, Clone)]
enum Allowed<T> {
    Reflect,
    List(Box<[T]>, HeaderValue),
}

/// What the access hook decided, for the response hook of the same request.
#[derive(Debug, Clone)]
enum Decision {
    /// A preflight: answered by this policy or left to the upstream; the response stays as is.
    Preflight,
    /// An allowed origin; the value to send in `Access-Control-Allow-Origin`.
    Allowed(HeaderValue),
    /// A disallowed origin.
    Denied,
}

const WILDCARD: HeaderValue = HeaderValue::from_static("*");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const PREFLIGHT_VARY: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

impl Cors {
    /// Validates `config`; errors name the field, e.g. `allow_origins[2]`.
    pub fn new(config: &Config) -> Result<Self, PolicyConfigError> {
        let credentials = config.allow_credentials;
        let origins = AllowedOrigins::compile(
            &config.allow_origins,
            &config.allow_origin_regex,
            credentials,
        )?;
        let methods = compile_methods(&config.allow_methods)?;
        let headers = if config.allow_headers.is_empty() {
            Allowed::Reflect
        } else {
            compile_names("allow_headers", &config.allow_headers)?
        };
        let expose_headers = compile_expose(&config.expose_headers, credentials)?;
        Ok(Self {
            origins,
            methods,
            headers,
            expose_headers,
            credentials,
            max_age: HeaderValue::from(config.max_age.get().as_secs()),
            preflight_continue: config.preflight_continue,
        })
    }

    /// True when `Access-Control-Allow-Origin` is `*` rather than the request's origin.
    fn answers_wildcard(&self) -> bool {
        self.origins.any() && !self.credentials
    }

    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.answers_wildcard() {
            WILDCARD
        } else {
            origin.clone()
        }
    }

    fn preflight(&self, origin: &HeaderValue, req: &request::Parts) -> Outcome {
        if !self.origins.allows(origin) {
            return reject(format!("origin {origin:?} is not allowed"));
        }
        let Some(method) = req
            .headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        else {
            return reject("malformed Access-Control-Request-Method");
        };
        let allow_methods = match &self.methods {
            Allowed::List(list, _) if !list.contains(&method) => {
                return reject(format!("method {method} is not allowed"));
            }
            Allowed::List(_, value) => value.clone(),
            Allowed::Reflect => match HeaderValue::from_str(method.as_str()) {
                Ok(value) => value,
                Err(_) => return reject("malformed Access-Control-Request-Method"),
            },
        };
        let Some(requested) = requested_headers(&req.headers) else {
            return reject("malformed Access-Control-Request-Headers");
        };
        let allow_headers = match &self.headers {
            Allowed::List(list, value) => {
                if let Some(h) = requested.iter().find(|h| !list.contains(h)) {
                    return reject(format!("request header {h} is not allowed"));
                }
                Some(value.clone())
            }
            Allowed::Reflect if requested.is_empty() => None,
            Allowed::Reflect => {
                let joined = requested
                    .iter()
                    .map(HeaderName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                match HeaderValue::from_str(&joined) {
                    Ok(value) => Some(value),
                    Err(_) => return reject("malformed Access-Control-Request-Headers"),
                }
            }
        };

        let mut res = Response::new(ProxyBody::Empty);
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        if self.credentials {
            h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, allow_methods);
        if let Some(value) = allow_headers {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        h.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        h.insert(VARY, PREFLIGHT_VARY);
        Outcome::Respond(res)
    }

    fn decide(&self, cx: &mut RequestCtx, req: &request::Parts) -> Outcome {
        let Some(origin) = req.headers.get(ORIGIN) else {
            return Outcome::Continue;
        };
        let is_preflight = req.method == Method::OPTIONS
            && req.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            cx.extensions.insert(Decision::Preflight);
            if self.preflight_continue {
                return Outcome::Continue;
            }
            return self.preflight(origin, req);
        }
        let decision = if self.origins.allows(origin) {
            Decision::Allowed(self.allow_origin_value(origin))
        } else {
            Decision::Denied
        };
        cx.extensions.insert(decision);
        Outcome::Continue
    }
}

impl Policy for Cors {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> Phases {
        Phases::ACCESS | Phases::RESPONSE
    }

    fn access<'a>(&'a self, cx: &'a mut RequestCtx, req: &'a mut request::Parts) -> Hook<'a> {
        Hook::Ready(self.decide(cx, req))
    }

    fn response(&self, cx: &mut RequestCtx, res: &mut response::Parts) {
        let h = &mut res.headers;
        match cx.extensions.get::<Decision>() {
            Some(Decision::Preflight) => return,
            Some(Decision::Allowed(origin)) => {
                h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                if self.credentials {
                    h.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
                } else {
                    h.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
                }
                match &self.expose_headers {
                    Some(value) => h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value.clone()),
                    None => h.remove(ACCESS_CONTROL_EXPOSE_HEADERS),
                };
            }
            Some(Decision::Denied) => {
                h.remove(ACCESS_CONTROL_ALLOW_ORIGIN);
                h.remove(ACCESS_CONTROL_ALLOW_CREDENTIALS);
                h.remove(ACCESS_CONTROL_EXPOSE_HEADERS);
            }
            None => {}
        }
        if !self.answers_wildcard() {
            vary_on_origin(h);
        }
    }
}

fn reject(message: impl Into<std::borrow::Cow<'static, str>>) -> Outcome {
    Outcome::Reject(GatewayError::downstream(
        StatusCode::FORBIDDEN,
        "cors_rejected",
        message,
    ))
}

/// The header names of `Access-Control-Request-Headers` (all its lines), lowercase; `None`
/// when one is not a header name.
fn requested_headers(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            if !item.is_empty() {
                names.push(HeaderName::from_bytes(item).ok()?);
            }
        }
    }
    Some(names)
}

/// Adds `Origin` to `Vary`, merging with the values already there (none added when `Vary`
/// already names `Origin` or is `*`).
fn vary_on_origin(headers: &mut HeaderMap) {
    let existing: Vec<&[u8]> = headers
        .get_all(VARY)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if existing.is_empty() {
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        return;
    }
    let covered = existing
        .iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|t| t == b"*" || t.eq_ignore_ascii_case(b"origin"));
    if covered {
        return;
    }
    let mut merged = existing.join(&b", "[..]);
    merged.extend_from_slice(b", Origin");
    match HeaderValue::from_bytes(&merged) {
        Ok(value) => {
            headers.insert(VARY, value);
        }
        Err(_) => {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
    }
}

fn compile_methods(raw: &[String]) -> Result<Allowed<Method>, PolicyConfigError> {
    if raw.is_empty() {
        return Err(PolicyConfigError::new(
            field("allow_methods"),
            "list at least one method, or leave the field out for the default",
        ));
    }
    if let Some(i) = star_position(raw) {
        if raw.len() > 1 {
            return Err(PolicyConfigError::new(
                field("allow_methods").index(i),
                "\"*\" already allows every method; remove the other entries",
            ));
        }
        return Ok(Allowed::Reflect);
    }
    let mut methods = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        let path = field("allow_methods").index(i);
        let method = Method::from_bytes(name.as_bytes()).map_err(|_| {
            PolicyConfigError::new(path.clone(), format!("{name:?} is not a method"))
        })?;
        let upper = name.to_ascii_uppercase();
        if upper != *name && Method::from_bytes(upper.as_bytes()).is_ok_and(|m| is_standard(&m)) {
            return Err(PolicyConfigError::new(
                path,
                format!("methods are case-sensitive: write {upper:?}"),
            ));
        }
        methods.push(method);
    }
    let value = join(methods.iter().map(Method::as_str), &field("allow_methods"))?;
    Ok(Allowed::List(methods.into(), value))
}

fn is_standard(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ]
    .contains(method)
}

fn compile_names(key: &str, raw: &[String]) -> Result<Allowed<HeaderName>, PolicyConfigError> {
    if let Some(i) = star_position(raw) {
        if raw.len() > 1 {
            return Err(PolicyConfigError::new(
                field(key).index(i),
                "\"*\" already allows every header; remove the other entries",
            ));
        }
        return Ok(Allowed::Reflect);
    }
    let names = raw
        .iter()
        .enumerate()
        .map(|(i, name)| header_name(&field(key).index(i), name))
        .collect::<Result<Vec<_>, _>>()?;
    let value = join(names.iter().map(HeaderName::as_str), &field(key))?;
    Ok(Allowed::List(names.into(), value))
}

fn compile_expose(
    raw: &[String],
    credentials: bool,
) -> Result<Option<HeaderValue>, PolicyConfigError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut names = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        let path = field("expose_headers").index(i);
        if name == "*" {
            if credentials {
                return Err(PolicyConfigError::new(
                    path,
                    "\"*\" is not a wildcard on credentialed requests (Fetch standard); with \
                     allow_credentials: true, list the headers to expose",
                ));
            }
            names.push("*".to_owned());
        } else {
            names.push(header_name(&path, name)?.as_str().to_owned());
        }
    }
    join(names.iter().map(String::as_str), &field("expose_headers")).map(Some)
}

fn star_position(raw: &[String]) -> Option<usize> {
    raw.iter().position(|s| s == "*")
}

fn join<'a>(
    items: impl Iterator<Item = &'a str>,
    path: &tollgate_model::FieldPath,
) -> Result<HeaderValue, PolicyConfigError> {
    let joined = items.collect::<Vec<_>>().join(", ");
    HeaderValue::from_str(&joined)
        .map_err(|_| PolicyConfigError::new(path.clone(), "cannot be sent as a header value"))
}

#[cfg(test)]
mod tests;
