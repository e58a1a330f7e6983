//! Request extractors whose rejections are [`ApiError`]s naming the field: JSON bodies
//! (strict, through `serde_path_to_error`), query strings, path segments, `If-Match`, and
//! configuration uploads (YAML or JSON text).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tollgate_model::{FieldPath, Format};

use super::error::ApiError;

/// A JSON request body.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(kind) = media_type(req.headers())
            && kind != "application/json"
            && !kind.ends_with("+json")
        {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON (Content-Type: application/json), not {kind}"
            )));
        }
        let bytes = body(req, state).await?;
        decode_json(&bytes).map(Self)
    }
}

/// Parses `bytes` as one JSON value of type `T`; errors name the field.
pub(crate) fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = FieldPath::from_serde(e.path());
        let inner = e.into_inner();
        if inner.is_data() {
            let message = strip_location(&inner.to_string());
            ApiError::InvalidBody {
                field: field_of(&path, &message),
                message,
            }
        } else {
            json_syntax(&inner)
        }
    })?;
    de.end().map_err(|e| json_syntax(&e))?;
    Ok(value)
}

fn json_syntax(e: &serde_json::Error) -> ApiError {
    ApiError::InvalidJson {
        message: format!("invalid JSON: {}", strip_location(&e.to_string())),
        line: e.line(),
        column: e.column(),
    }
}

/// The field an error is about: serde reports a missing field at its parent, so the field's
/// name is taken from the message.
fn field_of(path: &FieldPath, message: &str) -> Option<String> {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    let path = match named {
        Some(name) => path.key(name),
        None => path.clone(),
    };
    (!path.is_root()).then(|| path.to_string())
}

fn strip_location(message: &str) -> String {
    let cut = message.find(" at line ").unwrap_or(message.len());
    message[..cut].to_owned()
}

async fn body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::InvalidBody {
                field: None,
                message: format!("cannot read the request body: {}", e.body_text()),
            }
        }
    })
}

fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = value.to_str().unwrap_or("invalid");
    let kind = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(kind)
}

/// A query string, strict: unknown parameters are errors.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let path = FieldPath::from_serde(e.path());
            let message = e.into_inner().to_string();
            ApiError::InvalidQuery {
                field: field_of(&path, &message),
                message: format!("invalid query: {message}"),
            }
        })
    }
}

/// Path parameters.
#[derive(Debug)]
pub(crate) struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::InvalidPath(e.body_text()))
    }
}

/// The `If-Match` header: the revision the client last saw (`"12"`), or none (also for `*`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or("").trim();
        if text == "*" {
            return Ok(Self(None));
        }
        text.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<i64>().ok())
            .map(|r| Self(Some(r)))
            .ok_or_else(|| ApiError::InvalidHeader {
                header: "If-Match",
                message: format!(
                    "If-Match must be one entity tag as returned in ETag, such as \"12\" (quotes included), or *; got {text:?}"
                ),
            })
    }
}

/// A configuration upload: the text and its syntax (`application/json` is JSON; YAML types,
/// `text/plain` or no type are YAML, which also reads JSON).
#[derive(Debug)]
pub(crate) struct ConfigText {
    pub text: String,
    pub format: Format,
}

impl<S: Send + Sync> FromRequest<S> for ConfigText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let format = match media_type(req.headers()).as_deref() {
            None
            | Some(
                "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
                | "text/plain",
            ) => Format::Yaml,
            Some("application/json") => Format::Json,
            Some(other) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "a configuration is sent as application/yaml or application/json, not {other}"
                )));
            }
        };
        let bytes = body(req, state).await?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| ApiError::InvalidBody {
            field: None,
            message: format!("the configuration is not UTF-8 text: {e}"),
        })?;
        Ok(Self { text, format })
    }
}
