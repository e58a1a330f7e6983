//! The admin API driven in-process (`tower::ServiceExt::oneshot`) against a control over a
//! temporary SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod bad_input;
mod certificates;
mod config;
mod lifecycle;
mod openapi;
mod openapi_docs;
mod resources;
mod schemas;
mod support;
mod tokens;
