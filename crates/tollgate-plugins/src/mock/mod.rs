//! `mock`: answers requests itself with a fixed response (access phase, priority 100).
//!
//! ```yaml
//! - name: mock
//!   config:
//!     status: 200                # default 200; 1xx refused
//!     headers: { x-mock: "yes" } # string or list of strings per name
//!     json: { "users": [] }      # or `body: "text"`; at most one of the two
//! ```
//!
//! The lowest built-in priority, so authentication, limits and CORS run first and a mocked
//! route behaves like a real one for them. The body bytes and headers are built when the
//! policy is built; a request costs one header-map clone and no serialization. `json` sets
//! `content-type: application/json` and `body` sets `text/plain; charset=utf-8`, unless
//! `headers` gives a content type. 204 and 304 responses cannot have a body. Framing and
//! hop-by-hop headers are refused: the proxy derives them from the body.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header, request};
use serde::{Deserialize, Deserializer};
use tollgate_plugin_api::{
    Hook, Outcome, Phases, Policy, PolicyConfigError, PolicyFactory, ProxyBody, RequestCtx,
    parse_policy_config,
};

use crate::config::field;
use crate::header_edit::{HeaderValues, compile_map};

/// The plugin name in configuration.
pub const NAME: &str = "mock";
/// Default chain position: last in the access phase, after every check.
pub const PRIORITY: i32 = 100;

/// The fixed response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Status code (200 to 599).
    #[serde(default = "default_status")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValues>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body (any JSON value, `null` included), serialized once at build time.
    #[serde(default, deserialize_with = "present")]
    pub json: Option<serde_json::Value>,
}

fn default_status() -> u16 {
    200
}

/// Keeps an explicit `null` as `Some(Null)`: `json: null` means a body of `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Builds [`Mock`] policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockFactory;

impl PolicyFactory for MockFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn priority(&self) -> i32 {
        PRIORITY
    }

    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Policy>, PolicyConfigError> {
        Ok(Arc::new(Mock::new(&parse_policy_config(config)?)?))
    }
}

/// Answers every request with the configured response.
#[derive(Debug, Clone)]
pub struct Mock {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Mock {
    /// Validates `config` and prepares the response.
    pub fn new(config: &Config) -> Result<Self, PolicyConfigError> {
        let status = StatusCode::from_u16(config.status)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))
            .ok_or_else(|| {
                PolicyConfigError::new(
                    field("status"),
                    format!("{} is not a final status code (200 to 599)", config.status),
                )
            })?;
        let (body, default_type, body_field) = match (&config.body, &config.json) {
            (Some(_), Some(_)) => {
                return Err(PolicyConfigError::new(
                    field("json"),
                    "give either `body` (text) or `json`, not both",
                ));
            }
            (Some(text), None) => (
                Bytes::from(text.clone()),
                "text/plain; charset=utf-8",
                "body",
            ),
            (None, Some(json)) => (
                Bytes::from(serde_json::to_vec(json).map_err(|e| {
                    PolicyConfigError::new(field("json"), format!("cannot serialize: {e}"))
                })?),
                "application/json",
                "json",
            ),
            (None, None) => (Bytes::new(), "", "body"),
        };
        if !body.is_empty() && matches!(status.as_u16(), 204 | 304) {
            return Err(PolicyConfigError::new(
                field(body_field),
                format!("a {status} response has no body"),
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, values) in compile_map(&field("headers"), &config.headers)? {
            for value in values {
                headers.append(name.clone(), value);
            }
        }
        if !default_type.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(default_type));
        }
        Ok(Self {
            status,
            headers,
            body,
        })
    }
}

impl Policy for Mock {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> Phases {
        Phases::ACCESS
    }

    fn access<'a>(&'a self, _cx: &'a mut RequestCtx, _req: &'a mut request::Parts) -> Hook<'a> {
        let mut res = Response::new(ProxyBody::full(self.body.clone()));
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers.clone();
        Hook::Ready(Outcome::Respond(res))
    }
}

#[cfg(test)]
mod tests;
