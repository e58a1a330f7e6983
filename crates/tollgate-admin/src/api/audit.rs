//! `GET /api/v1/audit`: the append-only record of every write (who, when, what, before and
//! after; secrets only in stored form), newest first. There is no route that changes it (and
//! the store refuses updates and deletes). In file mode nothing is written through the API,
//! so the log is empty.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_model::Timestamp;
use tollgate_store::{AuditEntry, AuditQuery};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Viewer;
use super::error::ApiError;
use super::extract::Params;
use super::openapi::ListErrors;
use super::page::{self, Page, decode_cursor, encode_cursor};
use crate::schema;

/// One page of the audit log, for the OpenAPI document.
type AuditPage = Page<AuditItem>;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only this object kind (`service`, `api_version`, `release`, `token`, ...).
    kind: Option<String>,
    /// Only this object key (`billing`, `orders/2`).
    key: Option<String>,
    /// Only this actor (token name).
    actor: Option<String>,
    /// Only entries older than this entry id.
    before: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One audited change.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditItem {
    /// Sequence number.
    id: i64,
    /// Store revision the change produced.
    revision: i64,
    /// When.
    #[schema(value_type = schema::Timestamp)]
    at: Timestamp,
    /// Who: the token's name (`cli:<user>` for local commands).
    actor: String,
    /// What, as `kind.verb` (`service.update`, `release.create`, `token.delete`).
    action: String,
    /// Object kind.
    kind: String,
    /// Object key.
    key: String,
    /// The object before (absent for a creation).
    before: Option<serde_json::Value>,
    /// The object after (absent for a deletion).
    after: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditItem {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            revision: e.revision,
            at: Timestamp::from_unix(e.at),
            actor: e.record.actor,
            action: e.record.action,
            kind: e.record.kind,
            key: e.record.key,
            before: e.record.before,
            after: e.record.after,
        }
    }
}

/// Read the audit log, newest first.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    operation_id = "list_audit",
    params(AuditParams),
    responses((status = 200, description = "One page, newest first.", body = AuditPage), ListErrors)
)]
async fn list(
    _: Viewer,
    State(state): State<ApiState>,
    Params(q): Params<AuditParams>,
) -> Result<Json<Page<AuditItem>>, ApiError> {
    let limit = page::limit(q.limit)?;
    let before_id = match (q.before, q.cursor.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidQuery {
                field: Some("cursor".into()),
                message: "give either before or cursor, not both".into(),
            });
        }
        (before, cursor) => before.or(cursor.map(decode_cursor::<i64>).transpose()?),
    };
    let Some(store) = state.control.store() else {
        return Ok(Json(Page::all(Vec::new())));
    };
    let mut entries = store
        .audit(&AuditQuery {
            before_id,
            kind: q.kind,
            key: q.key,
            actor: q.actor,
            // One more than asked, to know whether another page follows.
            limit: u32::try_from(limit + 1).unwrap_or(u32::MAX),
        })
        .await?;
    // The store returns at most 1000: at the largest page size a full page may be the last.
    let more =
        entries.len() > limit || (limit == page::MAX_LIMIT as usize && entries.len() == limit);
    entries.truncate(limit);
    let next_cursor = more
        .then(|| entries.last().map(|e| encode_cursor(&e.id)))
        .flatten();
    Ok(Json(Page {
        items: entries.into_iter().map(AuditItem::from).collect(),
        next_cursor,
    }))
}
