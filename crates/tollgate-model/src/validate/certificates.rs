//! Certificates: the host names of node-local certificate files (`tls.certificates`), and
//! named certificates (`certificates`): unique names, one form of the private key, a chain
//! that parses, and no server name claimed by two of them.
//!
//! Whether a key fits its certificate needs cryptography and is checked by the runtime. A
//! certificate outside its validity period is *not* an error here: validation runs on the
//! whole configuration at every change and at start, so a certificate that expires while it
//! is configured must not block unrelated changes or a restart. Writes of a certificate
//! refuse expired ones instead (the store's `check_certificate_validity`), and loading one
//! logs a warning.

use std::collections::HashMap;

use super::{Validator, check_host};
use crate::{Certificate, Config, FieldPath, parse_certificate_chain};

impl Validator {
    pub(super) fn certificate_files(&mut self, config: &Config) {
        for (i, cert) in config.tls.certificates.iter().enumerate() {
            for (h, host) in cert.hosts.iter().enumerate() {
                if let Err(reason) = check_host(host) {
                    self.err(
                        FieldPath::root()
                            .key("tls")
                            .key("certificates")
                            .index(i)
                            .key("hosts")
                            .index(h),
                        reason,
                    );
                }
            }
        }
    }

    pub(super) fn certificates(&mut self, config: &Config) {
        let root = FieldPath::root().key("certificates");
        let mut names = HashMap::new();
        // Server name (lowercase) → the certificate that claimed it first.
        let mut served: HashMap<String, usize> = HashMap::new();
        for (i, cert) in config.certificates.iter().enumerate() {
            let at = root.index(i);
            self.name(&at.key("name"), &cert.name);
            if let Some(first) = names.insert(cert.name.as_str(), i) {
                self.err(
                    at.key("name"),
                    format!(
                        "duplicate certificate name {:?} (first defined at certificates[{first}])",
                        cert.name
                    ),
                );
            }
            self.private_key(cert, &at);
            let mut hosts_ok = true;
            for (h, host) in cert.hosts.iter().enumerate() {
                if let Err(reason) = check_host(host) {
                    hosts_ok = false;
                    self.err(at.key("hosts").index(h), reason);
                }
            }
            let chain = match parse_certificate_chain(&cert.cert) {
                Ok(chain) => chain,
                Err(reason) => {
                    self.err(at.key("cert"), reason);
                    continue;
                }
            };
            if !hosts_ok {
                continue;
            }
            // Explicit hosts are reported at their index; names taken from the certificate
            // at `cert`.
            let claimed: Vec<(String, FieldPath)> = if cert.hosts.is_empty() {
                let names = chain.leaf.default_hosts();
                if names.is_empty() {
                    self.err(
                        at.key("hosts"),
                        "the certificate names no DNS host (no DNS subject alternative name or common name): set `hosts`",
                    );
                }
                names
                    .into_iter()
                    .filter(|n| check_host(n).is_ok())
                    .map(|n| (n, at.key("cert")))
                    .collect()
            } else {
                cert.hosts
                    .iter()
                    .enumerate()
                    .map(|(h, n)| (n.clone(), at.key("hosts").index(h)))
                    .collect()
            };
            for (host, path) in claimed {
                let host = host.to_ascii_lowercase();
                match served.get(&host) {
                    Some(&first) if first != i => self.err(
                        path,
                        format!(
                            "server name {host:?} is also served by certificate {:?} (certificates[{first}]); a server name picks one certificate: set `hosts` to split them",
                            config.certificates[first].name
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        served.insert(host, i);
                    }
                }
            }
        }
    }

    fn private_key(&mut self, cert: &Certificate, at: &FieldPath) {
        match (&cert.key, &cert.key_encrypted) {
            (Some(_), Some(_)) | (None, None) => self.err(
                at.key("key"),
                "set exactly one of `key` (PEM text) and `key_encrypted`",
            ),
            // Never quote the key in a message.
            (Some(key), None)
                if !(key.contains("-----BEGIN ") && key.contains("PRIVATE KEY-----")) =>
            {
                self.err(
                    at.key("key"),
                    "not a PEM private key (expected a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
                );
            }
            (None, Some(cipher)) if cipher.is_empty() => {
                self.err(at.key("key_encrypted"), "must not be empty");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{errors, valid};

    fn pem(name: &str) -> String {
        let path = format!("{}/testdata/tls/{name}.pem", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap()
    }

    /// A `certificates` entry as YAML, PEM in JSON strings.
    fn entry(name: &str, stem: &str, extra: &str) -> String {
        format!(
            "  - {{name: {name}, cert: {}, key: {}{extra}}}\n",
            serde_json::to_string(&pem(&format!("{stem}.crt"))).unwrap(),
            serde_json::to_string(&pem(&format!("{stem}.key"))).unwrap(),
        )
    }

    #[test]
    fn named_certificates_with_distinct_names_are_valid() {
        valid(&format!(
            "certificates:\n{}{}{}",
            entry("a", "a", ""),
            entry("b", "b", ", tags: [x], description: d"),
            // Expiry is not a validation error (see the module docs).
            entry("old", "expired", ""),
        ));
    }

    #[test]
    fn a_chain_that_does_not_parse_is_reported_at_cert() {
        let e = errors("certificates:\n  - {name: c, cert: /etc/c.pem, key: x}\n");
        assert!(
            e.contains("certificates[0].cert: no `-----BEGIN CERTIFICATE-----` block"),
            "{e}"
        );
        assert!(
            e.contains("certificates[0].key: not a PEM private key"),
            "{e}"
        );
        let broken = pem("a.crt").replace("MII", "M!I");
        let e = errors(&format!(
            "certificates:\n  - {{name: c, cert: {}, key_encrypted: 'v1:x'}}\n",
            serde_json::to_string(&broken).unwrap()
        ));
        assert!(
            e.contains("certificates[0].cert: PEM block 0 cannot be read"),
            "{e}"
        );
    }

    #[test]
    fn a_private_key_in_the_public_chain_is_refused() {
        let bundle = format!("{}{}", pem("a.crt"), pem("a.key"));
        let e = errors(&format!(
            "certificates:\n  - {{name: c, cert: {}, key_encrypted: 'v1:x'}}\n",
            serde_json::to_string(&bundle).unwrap()
        ));
        assert!(
            e.contains("certificates[0].cert: holds a private key"),
            "{e}"
        );
        assert!(
            !e.contains("BEGIN PRIVATE KEY"),
            "the key is never quoted: {e}"
        );
    }

    #[test]
    fn duplicate_names_and_key_forms_are_reported() {
        let e = errors(&format!(
            "certificates:\n{}{}  - {{name: n, cert: x}}\n",
            entry("a", "a", ""),
            entry("a", "b", ", key_encrypted: 'v1:x'"),
        ));
        assert!(
            e.contains("certificates[1].name: duplicate certificate name \"a\""),
            "{e}"
        );
        assert!(e.contains("certificates[1].key: set exactly one of"), "{e}");
        assert!(e.contains("certificates[2].key: set exactly one of"), "{e}");
    }

    #[test]
    fn a_server_name_served_by_two_certificates_is_a_conflict() {
        // From the certificates' names...
        let e = errors(&format!(
            "certificates:\n{}{}",
            entry("a", "a", ""),
            entry("a2", "a", ""),
        ));
        assert!(
            e.contains(
                "certificates[1].cert: server name \"a.test\" is also served by certificate \"a\""
            ),
            "{e}"
        );
        // ... and from explicit hosts, case-insensitively; splitting them with hosts is fine.
        let e = errors(&format!(
            "certificates:\n{}{}",
            entry("a", "a", ""),
            entry("b", "b", ", hosts: [b.test, WWW.a.test]"),
        ));
        assert!(
            e.contains("certificates[1].hosts[1]: server name \"www.a.test\""),
            "{e}"
        );
        valid(&format!(
            "certificates:\n{}{}",
            entry("a", "a", ", hosts: [a.test]"),
            entry("a2", "a", ", hosts: [www.a.test]"),
        ));
    }

    #[test]
    fn hosts_default_to_the_common_name_without_subject_alternative_names() {
        valid(&format!("certificates:\n{}", entry("cn", "cn-only", "")));
        let e = errors(&format!(
            "certificates:\n{}{}",
            entry("cn", "cn-only", ""),
            entry("x", "a", ", hosts: [cn.test]"),
        ));
        assert!(
            e.contains("certificates[1].hosts[0]: server name \"cn.test\""),
            "{e}"
        );
    }

    #[test]
    fn bad_hosts_are_reported() {
        let e = errors(&format!(
            "certificates:\n{}",
            entry("a", "a", ", hosts: ['a.test:443']")
        ));
        assert!(
            e.contains("certificates[0].hosts[0]: \"a.test:443\" is not a host name"),
            "{e}"
        );
        let e = errors("tls:\n  certificates:\n    - {cert: c, key: k, hosts: ['bad host']}\n");
        assert!(e.contains("tls.certificates[0].hosts[0]"), "{e}");
    }
}
