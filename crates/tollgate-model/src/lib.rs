//! The Tollgate configuration model.
//!
//! This crate owns the *wire types* that configuration files and (later) the admin API read and
//! write, the parser that turns YAML or JSON text into them with precise errors (file, line,
//! column, field path), and the validation that needs no plugin knowledge: references between
//! objects, duplicate names, malformed patterns, route conflicts and certificates that do not
//! parse or claim the same server name. It is pure: no I/O, no tokio.
//! Policy configurations are kept as JSON values here; `tollgate-runtime` types them through the
//! plugin registry and reports errors with the same [`FieldPath`]s.

mod api;
mod by_version;
mod certificate;
mod consumer;
mod diagnostic;
mod duration;
mod environment;
mod envsubst;
mod listen;
mod locate;
mod parse;
mod path_pattern;
mod policy;
mod server;
mod service;
mod timestamp;
mod tls;
mod validate;
mod x509;

pub use api::{
    Api, DEFAULT_API_VERSION, Deprecation, HeaderMatch, HostPolicy, QueryMatch, Rewrite, Route,
    Routes,
};
pub use by_version::{ByVersion, Kept, Marks, OfApi, VersionRef, same_definition};
pub use certificate::Certificate;
pub use consumer::{Consumer, Credential, Grant};
pub use diagnostic::{Diagnostic, Diagnostics, FieldPath, Location, PathSegment};
pub use duration::Duration;
pub use environment::{DEFAULT_ENVIRONMENT, Environment};
pub use envsubst::{
    EnvError, VarError, is_var_name, substitute_env, substitute_vars, var_references,
};
pub use listen::Listen;
pub use locate::locate;
pub use parse::{Config, Format, parse_config};
pub use path_pattern::{PathPattern, PatternError, Segment};
pub use policy::PolicySpec;
pub use server::{
    AccessLog, EnvironmentHeader, EscapedSlashes, Limits, PathNormalization, RequestIdConfig,
    ServerConfig, Timeouts,
};
pub use service::{MockBackend, Pool, Protocol, Service, Target, UpstreamTimeouts, UpstreamTls};
pub use timestamp::Timestamp;
pub use tls::{CertificateFile, TlsConfig, TlsVersion};
pub use validate::{TargetUrl, ValidationCache, validate};
pub use x509::{CertificateChain, CertificateDetails, parse_certificate_chain, unfold_pem};
