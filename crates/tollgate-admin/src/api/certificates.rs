//! `/api/v1/certificates`: downstream TLS certificates, chosen by SNI. Handlers from
//! [`super::resources`]. A private key given in clear (`key`) is encrypted before anything is
//! stored; answers never hold it, in any form: they show the certificate and what it says
//! about itself (subject, names, validity, serial, fingerprint) instead. A replace without a
//! key keeps the stored one. A certificate whose chain is new or changed must be valid now.

use serde::Serialize;
use tollgate_model::{Certificate as Body, FieldPath, Timestamp};
use tollgate_store::secrets::SecretKey;
use tollgate_store::state::{check_certificate_validity, protect_certificate};
use tollgate_store::{Certificates, WriteError};
use utoipa::ToSchema;

use super::resources::{Resource, endpoints};
use crate::schema::Certificate;

/// A certificate as the admin API shows it: the stored object without its private key, and
/// what the leaf certificate says.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CertificateView {
    /// Unique name.
    name: String,
    /// Free text for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Labels for filtering.
    tags: Vec<String>,
    /// The certificate chain as PEM text, leaf first.
    cert: String,
    /// Server names configured (empty: the names of the certificate).
    hosts: Vec<String>,
    /// The server names (SNI) this certificate answers for.
    served_names: Vec<String>,
    /// Subject distinguished name of the leaf.
    subject: String,
    /// Issuer distinguished name of the leaf.
    issuer: String,
    /// Subject alternative names of the leaf (DNS names, then IP addresses).
    sans: Vec<String>,
    /// Serial number, hex bytes separated by `:`.
    serial: String,
    /// SHA-256 of the leaf certificate (DER), lowercase hex.
    fingerprint_sha256: String,
    /// Start of validity.
    #[schema(value_type = crate::schema::Timestamp)]
    not_before: Timestamp,
    /// End of validity.
    #[schema(value_type = crate::schema::Timestamp)]
    not_after: Timestamp,
    /// Whether the certificate is valid now (not expired, not before its start).
    valid_now: bool,
}

fn view(value: &Body) -> CertificateView {
    // Stored chains were validated; a corrupt one shows empty details rather than failing.
    let leaf = tollgate_model::parse_certificate_chain(&value.cert)
        .map(|c| c.leaf)
        .ok();
    let served_names = match (&leaf, value.hosts.is_empty()) {
        (Some(leaf), true) => leaf.default_hosts(),
        _ => value.hosts.clone(),
    };
    let text = |f: fn(&tollgate_model::CertificateDetails) -> String| {
        leaf.as_ref().map(f).unwrap_or_default()
    };
    let epoch = Timestamp::from_unix(0);
    CertificateView {
        name: value.name.clone(),
        description: value.description.clone(),
        tags: value.tags.clone(),
        cert: value.cert.clone(),
        hosts: value.hosts.clone(),
        served_names,
        subject: text(|l| l.subject.clone()),
        issuer: text(|l| l.issuer.clone()),
        sans: leaf
            .as_ref()
            .map(|l| l.dns_names.iter().chain(&l.ip_addresses).cloned().collect())
            .unwrap_or_default(),
        serial: text(|l| l.serial.clone()),
        fingerprint_sha256: text(|l| l.fingerprint_sha256.clone()),
        not_before: leaf.as_ref().map_or(epoch, |l| l.not_before),
        not_after: leaf.as_ref().map_or(epoch, |l| l.not_after),
        valid_now: leaf
            .as_ref()
            .is_some_and(|l| l.validity_problem(Timestamp::now()).is_none()),
    }
}

impl Resource for Certificates {
    const PATH: &'static str = "/certificates";
    const CONFIG_FIELD: &'static str = "certificates";
    type View = CertificateView;

    fn view(value: &Body) -> CertificateView {
        view(value)
    }

    fn name(value: &Body) -> &str {
        &value.name
    }

    fn tags(value: &Body) -> &[String] {
        &value.tags
    }

    fn prepare(
        value: Body,
        previous: Option<&Body>,
        key: &SecretKey,
        at: &FieldPath,
    ) -> Result<Body, WriteError> {
        let stored = protect_certificate(&value, previous, key)?;
        check_certificate_validity(&stored, previous, at, Timestamp::now())?;
        Ok(stored)
    }
}

endpoints! {
    @views
    resource: Certificates,
    schema: Certificate,
    view: CertificateView,
    page: CertificatePage,
    query: TaggedQuery,
    tag: "certificates",
    collection: "/certificates",
    item: "/certificates/{name}",
    ids: ["list_certificates", "get_certificate", "create_certificate", "replace_certificate", "delete_certificate"],
    summaries: ["List certificates", "Get a certificate", "Create a certificate", "Replace a certificate", "Delete a certificate"],
}
