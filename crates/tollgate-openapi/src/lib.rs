//! OpenAPI import and export for Tollgate APIs.
//!
//! This crate owns the translation between OpenAPI documents and the configuration model:
//! [`import`] reads an OpenAPI 3.0.x or 3.1.x document (YAML or JSON) into an [`Api`] with one
//! route per operation, each route keeping its operation object with local `$ref`s inlined (for
//! request validation and export); [`export`] writes APIs back as one OpenAPI 3.1.0 document,
//! from the [`Api`]s alone. It is pure: text and values in, values out; no I/O, no tokio. The
//! mapping rules and their limits are in docs/openapi.md.
//!
//! A command line front end calls, in order: [`import`] with [`ImportOptions`], then
//! [`Imported::to_config_yaml`] to print the result; for export, [`select_apis`],
//! [`ExportOptions::for_environment`] (or options built by hand) and [`export`].
//!
//! [`Api`]: tollgate_model::Api

mod document;
mod error;
mod export;
mod import;
mod names;
mod operation;
mod paths;
mod pointer;
mod resolve;
mod schema30;
mod security;
mod source;

pub use error::{ImportError, RenderError, Warning};
pub use export::{ExportOptions, OPENAPI_VERSION, export, select_apis};
pub use import::{ImportOptions, Imported, import};
pub use paths::capture_name;
pub use pointer::Pointer;
pub use security::{AUTH_POLICIES, DEFAULT_KEY_HEADER};
