//! Reading certificates: a PEM chain to its DER blocks and the details of its leaf (names,
//! validity, serial, fingerprint). Pure parsing, shared by validation, the runtime's TLS
//! resolver and the admin API's views; whether a private key fits a certificate needs
//! cryptography and is checked by the runtime when it builds the resolver.

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Timestamp;

/// A parsed certificate chain.
#[derive(Debug, Clone)]
pub struct CertificateChain {
    /// DER of each certificate, leaf first.
    pub der: Vec<Vec<u8>>,
    /// Details of the leaf.
    pub leaf: CertificateDetails,
}

/// What a leaf certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateDetails {
    /// Subject distinguished name (`CN=example.com, O=Example`).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, lowercase hex bytes separated by `:`.
    pub serial: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// SHA-256 of the leaf's DER, lowercase hex.
    pub fingerprint_sha256: String,
    /// DNS names of the subject alternative names.
    pub dns_names: Vec<String>,
    /// IP addresses of the subject alternative names.
    pub ip_addresses: Vec<String>,
    /// Common names of the subject.
    pub common_names: Vec<String>,
}

impl CertificateDetails {
    /// The server names the certificate answers for when none are configured: its DNS
    /// subject alternative names, or, without any, its common names.
    pub fn default_hosts(&self) -> Vec<String> {
        if self.dns_names.is_empty() {
            self.common_names.clone()
        } else {
            self.dns_names.clone()
        }
    }

    /// Why the certificate is not valid at `now` (expired, or not yet valid), if so.
    pub fn validity_problem(&self, now: Timestamp) -> Option<String> {
        if now > self.not_after {
            Some(format!("the certificate expired at {}", self.not_after))
        } else if now < self.not_before {
            Some(format!(
                "the certificate is not valid before {}",
                self.not_before
            ))
        } else {
            None
        }
    }
}

/// Parses PEM text holding a certificate chain, leaf first. Refuses text without a
/// certificate, blocks that are not valid PEM or X.509, and any private key block (the chain
/// is public: reads and exports show it).
pub fn parse_certificate_chain(pem: &str) -> Result<CertificateChain, String> {
    let pem = unfold_pem(pem);
    let mut der = Vec::new();
    for (i, block) in Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        let block = block.map_err(|e| format!("PEM block {i} cannot be read: {e}"))?;
        if block.label.contains("PRIVATE KEY") {
            return Err(
                "holds a private key: give the chain here and the key in `key` (the chain is shown by reads and exports)"
                    .into(),
            );
        }
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "PEM block {i} is {:?}, not a CERTIFICATE",
                block.label
            ));
        }
        der.push(block.contents);
    }
    let Some(first) = der.first() else {
        return Err(
            "no `-----BEGIN CERTIFICATE-----` block: the chain is given as PEM text, not a file name"
                .into(),
        );
    };
    let leaf = details(first)?;
    for (i, other) in der.iter().enumerate().skip(1) {
        X509Certificate::from_der(other)
            .map_err(|e| format!("certificate {i} of the chain is not valid X.509: {e}"))?;
    }
    Ok(CertificateChain { der, leaf })
}

/// PEM text whose line breaks were folded into spaces (what `${VAR}` holding a PEM file
/// becomes inside a YAML string) with its lines restored; other text as it is.
pub fn unfold_pem(text: &str) -> Cow<'_, str> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    const DASHES: &str = "-----";
    if text.contains('\n') || !text.contains(BEGIN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(header_len) = rest[start + BEGIN.len()..].find(DASHES) else {
            break;
        };
        let header_end = start + BEGIN.len() + header_len + DASHES.len();
        let Some(body_len) = rest[header_end..].find(END) else {
            break;
        };
        let footer_start = header_end + body_len;
        let Some(footer_len) = rest[footer_start + END.len()..].find(DASHES) else {
            break;
        };
        let footer_end = footer_start + END.len() + footer_len + DASHES.len();
        out.push_str(&rest[start..header_end]);
        out.push('\n');
        for word in rest[header_end..footer_start].split_whitespace() {
            out.push_str(word);
            out.push('\n');
        }
        out.push_str(&rest[footer_start..footer_end]);
        out.push('\n');
        rest = &rest[footer_end..];
    }
    Cow::Owned(out)
}

fn details(der: &[u8]) -> Result<CertificateDetails, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the leaf certificate is not valid X.509: {e}"))?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_of(bytes) {
                        ip_addresses.push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    let common_names = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    let validity = cert.validity();
    Ok(CertificateDetails {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string().to_ascii_lowercase(),
        not_before: Timestamp::from_unix(validity.not_before.timestamp()),
        not_after: Timestamp::from_unix(validity.not_after.timestamp()),
        fingerprint_sha256: Sha256::digest(der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        dns_names,
        ip_addresses,
        common_names,
    })
}

fn ip_of(bytes: &[u8]) -> Option<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Some(std::net::Ipv4Addr::from(v4).to_string());
    }
    <[u8; 16]>::try_from(bytes)
        .ok()
        .map(|v6| std::net::Ipv6Addr::from(v6).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(name: &str) -> String {
        let path = format!("{}/testdata/tls/{name}.pem", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap()
    }

    #[test]
    fn leaf_details_are_read() {
        let chain = parse_certificate_chain(&pem("a.crt")).unwrap();
        assert_eq!(chain.der.len(), 1);
        let leaf = &chain.leaf;
        assert_eq!(leaf.subject, "CN=a.test");
        assert_eq!(leaf.issuer, "CN=a.test");
        assert_eq!(leaf.dns_names, ["a.test", "www.a.test"]);
        assert_eq!(leaf.ip_addresses, ["127.0.0.1"]);
        assert_eq!(leaf.default_hosts(), ["a.test", "www.a.test"]);
        assert_eq!(leaf.not_after.to_string(), "2125-01-01T00:00:00Z");
        assert_eq!(leaf.fingerprint_sha256.len(), 64);
        assert!(
            leaf.serial.contains(':') || leaf.serial.len() >= 2,
            "{}",
            leaf.serial
        );
        assert_eq!(leaf.validity_problem(Timestamp::now()), None);
    }

    #[test]
    fn a_chain_keeps_every_certificate_in_order() {
        let chain =
            parse_certificate_chain(&format!("{}\n{}", pem("a.crt"), pem("b.crt"))).unwrap();
        assert_eq!(chain.der.len(), 2);
        assert_eq!(chain.leaf.subject, "CN=a.test");
    }

    #[test]
    fn validity_problems_are_named() {
        let now = Timestamp::now();
        let old = parse_certificate_chain(&pem("expired.crt")).unwrap().leaf;
        assert_eq!(
            old.validity_problem(now).as_deref(),
            Some("the certificate expired at 2021-01-01T00:00:00Z")
        );
        let new = parse_certificate_chain(&pem("future.crt")).unwrap().leaf;
        assert_eq!(
            new.validity_problem(now).as_deref(),
            Some("the certificate is not valid before 2100-01-01T00:00:00Z")
        );
        let cn = parse_certificate_chain(&pem("cn-only.crt")).unwrap().leaf;
        assert_eq!(cn.default_hosts(), ["cn.test"]);
    }

    #[test]
    fn pem_folded_into_one_line_is_unfolded() {
        let text = format!("{}{}", pem("a.crt"), pem("b.crt"));
        let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // Folding splits "BEGIN CERTIFICATE" only at its own space, which unfolding keeps.
        assert_eq!(unfold_pem(&folded), text);
        assert_eq!(parse_certificate_chain(&folded).unwrap().der.len(), 2);
        assert!(matches!(unfold_pem(&text), Cow::Borrowed(_)));
        assert_eq!(unfold_pem("no pem"), "no pem");
    }

    #[test]
    fn what_is_not_a_chain_is_refused() {
        for (text, expected) in [
            ("/etc/ssl/a.pem", "no `-----BEGIN CERTIFICATE-----` block"),
            (
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                "cannot be read",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not valid X.509",
            ),
        ] {
            let e = parse_certificate_chain(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
        let e = parse_certificate_chain(&pem("a.key")).unwrap_err();
        assert!(e.contains("holds a private key"), "{e}");
    }
}
