//! Certificates in the store: private keys are encrypted before they are stored (and never
//! shown again, not even encrypted, in the audit log), decrypted only to build what the data
//! plane serves; and a certificate is refused when it is *written* outside its validity period.

use tollgate_model::{Certificate, Config, Diagnostic, FieldPath, Timestamp};

use super::WriteError;
use super::protect::encrypt;
use crate::StoreError;
use crate::secrets::SecretKey;

/// What the audit log shows instead of a key.
const REDACTED: &str = "[redacted]";

/// `cert` as stored: a clear `key` encrypted with `key` (keeping `previous`'s ciphertext when
/// it holds the same key, so that re-applying a file changes nothing). Without either form of
/// the key, `previous`'s encrypted key is kept: a replace may change hosts, tags or a chain
/// renewed with the same key without sending the key again (validation checks they fit).
pub fn protect_certificate(
    cert: &Certificate,
    previous: Option<&Certificate>,
    key: &SecretKey,
) -> Result<Certificate, StoreError> {
    let mut out = cert.clone();
    let old = previous.and_then(|p| p.key_encrypted.as_deref());
    if out.key.is_none() && out.key_encrypted.is_none() {
        out.key_encrypted = old.map(str::to_owned);
        return Ok(out);
    }
    encrypt(&mut out.key, &mut out.key_encrypted, old, key)?;
    Ok(out)
}

/// Refuses a certificate being written (created, or its chain changed) that is expired or
/// not yet valid at `now`; `at` is where it is in the configuration. An unchanged chain is
/// never refused, so that a certificate expiring while configured does not block other
/// writes (it is reported in the logs instead). A chain that does not parse is left to
/// validation, which names the problem.
pub fn check_certificate_validity(
    cert: &Certificate,
    previous: Option<&Certificate>,
    at: &FieldPath,
    now: Timestamp,
) -> Result<(), WriteError> {
    if previous.is_some_and(|p| p.cert == cert.cert) {
        return Ok(());
    }
    let Ok(chain) = tollgate_model::parse_certificate_chain(&cert.cert) else {
        return Ok(());
    };
    match chain.leaf.validity_problem(now) {
        None => Ok(()),
        Some(problem) => Err(WriteError::Invalid(vec![Diagnostic::new(
            at.key("cert"),
            format!("{problem}: a certificate must be valid when it is written"),
        )])),
    }
}

/// The audit log's view of a certificate: the stored form with the key replaced by a marker.
pub(super) fn audit_json(cert: &Certificate) -> Result<serde_json::Value, serde_json::Error> {
    let mut shown = cert.clone();
    if shown.key.is_some() {
        shown.key = Some(REDACTED.into());
    }
    if shown.key_encrypted.is_some() {
        shown.key_encrypted = Some(REDACTED.into());
    }
    serde_json::to_value(&shown)
}

/// Decrypts every certificate's `key_encrypted` into `key`, for the configuration the data
/// plane compiles (never for exports). A key this node cannot decrypt is reported at its
/// field.
pub(super) fn reveal_keys(config: &mut Config, key: &SecretKey) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    for (i, cert) in config.certificates.iter_mut().enumerate() {
        if cert.key.is_some() {
            continue;
        }
        let Some(cipher) = cert.key_encrypted.take() else {
            continue;
        };
        match key.decrypt(&cipher) {
            Ok(clear) => cert.key = Some(clear),
            Err(e) => {
                errors.push(Diagnostic::new(
                    FieldPath::root()
                        .key("certificates")
                        .index(i)
                        .key("key_encrypted"),
                    e.to_string(),
                ));
                cert.key_encrypted = Some(cipher);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(name: &str) -> String {
        let path = format!(
            "{}/../tollgate-model/testdata/tls/{name}.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap()
    }

    fn cert(stem: &str) -> Certificate {
        Certificate {
            name: stem.into(),
            description: None,
            tags: vec![],
            cert: pem(&format!("{stem}.crt")),
            key: Some(pem(&format!("{stem}.key"))),
            key_encrypted: None,
            hosts: vec![],
        }
    }

    fn secret() -> SecretKey {
        SecretKey::from_bytes(&[5; 32]).unwrap()
    }

    #[test]
    fn keys_are_encrypted_and_round_trip() {
        let key = secret();
        let input = cert("a");
        let stored = protect_certificate(&input, None, &key).unwrap();
        assert_eq!(stored.key, None);
        let cipher = stored.key_encrypted.clone().unwrap();
        assert!(!cipher.contains("PRIVATE KEY"));
        assert_eq!(key.decrypt(&cipher).unwrap(), pem("a.key"));

        // The same clear key again keeps the ciphertext: re-applying changes nothing.
        assert_eq!(
            protect_certificate(&input, Some(&stored), &key).unwrap(),
            stored
        );
        // The stored form is kept as it is.
        assert_eq!(
            protect_certificate(&stored, Some(&stored), &key).unwrap(),
            stored
        );
        // No key at all: the previous one is kept.
        let no_key = Certificate {
            key: None,
            tags: vec!["t".into()],
            ..input.clone()
        };
        let kept = protect_certificate(&no_key, Some(&stored), &key).unwrap();
        assert_eq!(kept.key_encrypted, stored.key_encrypted);
        assert_eq!(kept.tags, ["t"]);

        // Revealing gives the clear key back, for the data plane only.
        let mut config = Config {
            certificates: vec![stored.clone()],
            ..Config::default()
        };
        reveal_keys(&mut config, &key).unwrap();
        assert_eq!(
            config.certificates[0].key.as_deref(),
            Some(pem("a.key").as_str())
        );
        assert_eq!(config.certificates[0].key_encrypted, None);
        // With another node's key, the field is named.
        let mut config = Config {
            certificates: vec![stored],
            ..Config::default()
        };
        let e = reveal_keys(&mut config, &SecretKey::from_bytes(&[6; 32]).unwrap()).unwrap_err();
        assert_eq!(e[0].path.to_string(), "certificates[0].key_encrypted");
    }

    #[test]
    fn the_audit_view_never_holds_the_key() {
        let key = secret();
        let stored = protect_certificate(&cert("a"), None, &key).unwrap();
        for c in [cert("a"), stored] {
            let text = audit_json(&c).unwrap().to_string();
            assert!(
                !text.contains("PRIVATE KEY") && !text.contains("v1:"),
                "{text}"
            );
            assert!(text.contains(REDACTED), "{text}");
        }
    }

    #[test]
    fn expired_and_future_certificates_are_refused_when_written() {
        let at = FieldPath::root().key("certificates").index(2);
        let now = Timestamp::now();
        check_certificate_validity(&cert("a"), None, &at, now).unwrap();
        for stem in ["expired", "future"] {
            let c = cert(stem);
            let Err(WriteError::Invalid(d)) = check_certificate_validity(&c, None, &at, now) else {
                panic!("{stem} accepted");
            };
            assert_eq!(d[0].path.to_string(), "certificates[2].cert");
            // Unchanged, it is not refused again.
            check_certificate_validity(&c, Some(&c), &at, now).unwrap();
        }
    }
}
