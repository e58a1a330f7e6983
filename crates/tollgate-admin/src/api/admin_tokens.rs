//! `/api/v1/tokens`: admin tokens (role `admin`). A token is shown once, when created; the
//! store keeps only its SHA-256. Creating and revoking are audited. Tokens live in the store:
//! without one (file mode, tokens from a token file) these calls answer 409 `read_only`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_model::Timestamp;
use tollgate_store::secrets::{random_token, sha256_hex};
use tollgate_store::{Role, Store, TokenRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Admin;
use super::error::ApiError;
use super::extract::{JsonBody, Segments};
use super::openapi::{ListErrors, WriteErrors};
use super::page::Page;
use super::respond::segment;

/// The token list, for the OpenAPI document.
type TokenPage = Page<TokenInfo>;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// What a token may do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoleName {
    /// Reads everything.
    Viewer,
    /// Reads, and publishes, rolls back, unpublishes, deprecates.
    Operator,
    /// Everything.
    Admin,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Viewer => Role::Viewer,
            RoleName::Operator => Role::Operator,
            RoleName::Admin => Role::Admin,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Viewer => RoleName::Viewer,
            Role::Operator => RoleName::Operator,
            Role::Admin => RoleName::Admin,
        }
    }
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    /// A name for the token: the actor recorded in the audit log (1-128 characters, no
    /// control characters).
    name: String,
    /// What the token may do.
    role: RoleName,
}

/// A token (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenInfo {
    /// Public identifier.
    id: String,
    /// Name (the audit log's actor).
    name: String,
    /// What the token may do.
    role: RoleName,
    /// When it was created.
    #[schema(value_type = crate::schema::Timestamp)]
    created_at: Timestamp,
    /// Who created it.
    created_by: String,
}

impl From<TokenRecord> for TokenInfo {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            role: t.role.into(),
            created_at: Timestamp::from_unix(t.created_at),
            created_by: t.created_by,
        }
    }
}

/// A new token, with its secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    /// The token itself: send it as `Authorization: Bearer <token>`. Not shown again.
    token: String,
    /// The token's record.
    #[serde(flatten)]
    info: TokenInfo,
}

fn store(state: &ApiState) -> Result<&Store, ApiError> {
    state.token_store.as_ref().ok_or_else(|| {
        ApiError::ReadOnly(
            "admin tokens are managed in the store; this gateway has none (file mode: tokens come from the token file)"
                .into(),
        )
    })
}

/// List admin tokens.
#[utoipa::path(
    get,
    path = "/tokens",
    tag = "tokens",
    operation_id = "list_tokens",
    responses(
        (status = 200, description = "Every token, oldest first (never their secrets).", body = TokenPage),
        (status = 409, description = "No token store (file mode).", body = super::error::ErrorBody),
        ListErrors,
    )
)]
async fn list(_: Admin, State(state): State<ApiState>) -> Result<Json<Page<TokenInfo>>, ApiError> {
    let tokens = store(&state)?.list_tokens().await?;
    Ok(Json(Page::all(
        tokens.into_iter().map(TokenInfo::from).collect(),
    )))
}

/// Create an admin token (its secret is in the response only).
#[utoipa::path(
    post,
    path = "/tokens",
    tag = "tokens",
    operation_id = "create_token",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created; `token` is shown only now.", body = CreatedToken,
            headers(("Location" = String, description = "The token's URL (for DELETE)."))),
        WriteErrors,
    )
)]
async fn create(
    Admin(caller): Admin,
    State(state): State<ApiState>,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<
    (
        StatusCode,
        [(axum::http::HeaderName, String); 1],
        Json<CreatedToken>,
    ),
    ApiError,
> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidBody {
            field: Some("name".into()),
            message: "a token name is 1-128 characters without control characters".into(),
        });
    }
    let store = store(&state)?;
    let secret = random_token("tg_", 32)?;
    let record = TokenRecord {
        id: random_token("", 6)?,
        name: name.to_owned(),
        role: body.role.into(),
        hash: sha256_hex(&secret),
        created_at: Timestamp::now().unix_seconds(),
        created_by: caller.actor().to_owned(),
    };
    store.create_token(&record).await?;
    if let Some(source) = &state.tokens {
        source.invalidate();
    }
    let location = format!("/api/v1/tokens/{}", segment(&record.id));
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        Json(CreatedToken {
            token: secret,
            info: record.into(),
        }),
    ))
}

/// Revoke an admin token.
#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "tokens",
    operation_id = "delete_token",
    params(("id" = String, Path, description = "The token's id.")),
    responses((status = 204, description = "Revoked."), WriteErrors)
)]
async fn revoke(
    Admin(caller): Admin,
    State(state): State<ApiState>,
    Segments(id): Segments<String>,
) -> Result<StatusCode, ApiError> {
    let store = store(&state)?;
    if !store.delete_token(&id, caller.actor()).await? {
        return Err(ApiError::NotFound(format!("no token with id {id:?}")));
    }
    if let Some(source) = &state.tokens {
        source.invalidate();
    }
    Ok(StatusCode::NO_CONTENT)
}
