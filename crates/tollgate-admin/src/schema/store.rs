//! Mirrors of the lifecycle records of `tollgate_store`.

use utoipa::ToSchema;

use super::Timestamp;

/// One lifecycle event of an API in an environment; never changed once written.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Release {
    /// Identifier, in sequence.
    id: i64,
    /// API name.
    api: String,
    /// Environment.
    environment: String,
    /// The version live after the event (absent after an unpublish).
    #[serde(default)]
    version: Option<String>,
    /// What happened.
    action: ReleaseAction,
    /// For a rollback: the release whose version was restored.
    #[serde(default)]
    restores: Option<i64>,
    /// Free text given by whoever made the change.
    #[serde(default)]
    note: Option<String>,
    /// Who (token name).
    actor: String,
    /// When.
    at: Timestamp,
}

/// What a release did.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReleaseAction {
    /// Made a version live.
    Publish,
    /// Made the version of an earlier release live again.
    Rollback,
    /// Removed the API from the environment.
    Unpublish,
    /// Marked the live version deprecated (or changed its dates).
    Deprecate,
    /// Removed a deprecation.
    Undeprecate,
}
