//! Scalars written as text: durations and points in time.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

/// A duration: `humantime` text (`250ms`, `5s`, `1m30s`) or a whole number of seconds.
pub(crate) struct Duration;

impl PartialSchema for Duration {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "A duration: text such as \"250ms\", \"5s\", \"1m30s\", or a whole number of seconds.",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .examples([serde_json::json!("5s")]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .into()
    }
}

impl ToSchema for Duration {}

/// A UTC point in time, RFC 3339 with second precision (`2026-12-31T00:00:00Z`).
pub(crate) struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "A UTC point in time, RFC 3339 with second precision (2026-12-31T00:00:00Z).",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {}
