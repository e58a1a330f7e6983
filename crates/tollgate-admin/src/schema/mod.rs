//! OpenAPI schemas of the model's wire types.
//!
//! The request and response bodies of the admin API *are* `tollgate-model`'s wire types (and
//! a few of `tollgate-store`'s), which do not derive `utoipa::ToSchema`: the model stays free
//! of documentation dependencies. The types here mirror them field for field, with the same
//! serde attributes, only to describe them; they are never built. The test
//! `tests/api/schemas.rs` keeps them honest: fully populated model values must validate
//! against these schemas and use every property they declare.

#![allow(
    dead_code,
    reason = "schema-only mirrors of the wire types; never constructed"
)]

mod api;
mod certificate;
mod config;
mod consumer;
mod scalars;
mod server;
mod service;
mod store;

pub(crate) use api::{Api, ConfigApi, Deprecation, PolicySpec};
pub(crate) use certificate::Certificate;
pub(crate) use config::{Config, Environment};
pub(crate) use consumer::{Consumer, Credential};
pub(crate) use scalars::{Duration, Timestamp};
pub(crate) use server::ServerConfig;
pub(crate) use service::Service;
pub(crate) use store::Release;
