//! Authentication and roles. Every handler takes one of [`Viewer`], [`Operator`] or [`Admin`]
//! as its first argument: the extractor checks `Authorization: Bearer <token>` against the
//! [`TokenSource`](crate::tokens::TokenSource) (by SHA-256, never the token itself) and the
//! token's role before the body is read, so an unauthenticated or under-privileged call is
//! answered 401 or 403 whatever its body.
//!
//! Roles: `viewer` reads (GET); `operator` also runs the lifecycle (publish, rollback,
//! unpublish, deprecate, undeprecate); `admin` does everything, tokens included.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use tollgate_store::Role;
use tollgate_store::secrets::sha256_hex;

use super::ApiState;
use super::error::ApiError;
use crate::tokens::Identity;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub Identity);

impl Caller {
    /// The actor recorded in the audit log: the token's name.
    pub(crate) fn actor(&self) -> &str {
        &self.0.name
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        #[allow(dead_code, reason = "read-only handlers need no identity")]
        pub(crate) struct $name(pub Caller);

        impl FromRequestParts<ApiState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &ApiState,
            ) -> Result<Self, Self::Rejection> {
                let identity = authenticate(parts, state).await?;
                require(&identity, $role)?;
                Ok(Self(Caller(identity)))
            }
        }
    };
}

role_extractor!(
    /// Any valid token.
    Viewer,
    Role::Viewer
);
role_extractor!(
    /// An `operator` or `admin` token.
    Operator,
    Role::Operator
);
role_extractor!(
    /// An `admin` token.
    Admin,
    Role::Admin
);

async fn authenticate(parts: &Parts, state: &ApiState) -> Result<Identity, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "this call needs an admin token: send `Authorization: Bearer <token>`".into(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "malformed Authorization header: expected `Bearer <token>`".into(),
            )
        })?;
    let Some(source) = &state.tokens else {
        return Err(ApiError::Unauthorized(
            "unknown token: no admin tokens are configured on this node (run with a store and \
             create one with `tollgate admin token create`, or give a token file)"
                .into(),
        ));
    };
    match source.identify(&sha256_hex(token)).await? {
        Some(identity) => Ok(identity),
        None => Err(ApiError::Unauthorized(
            "unknown token (revoked, mistyped, or from another gateway)".into(),
        )),
    }
}

fn require(identity: &Identity, role: Role) -> Result<(), ApiError> {
    if identity.role >= role {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "token {:?} has role {}; this call needs {} or higher",
            identity.name,
            identity.role.as_str(),
            role.as_str()
        )))
    }
}
