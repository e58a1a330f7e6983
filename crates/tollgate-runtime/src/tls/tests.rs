use tollgate_model::{Certificate, CertificateFile, Config};

use super::*;

fn pem(name: &str) -> String {
    let path = format!(
        "{}/../tollgate-model/testdata/tls/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

fn named(name: &str, stem: &str, key_stem: &str) -> Certificate {
    Certificate {
        name: name.into(),
        description: None,
        tags: vec![],
        cert: pem(&format!("{stem}.crt")),
        key: Some(pem(&format!("{key_stem}.key"))),
        key_encrypted: None,
        hosts: vec![],
    }
}

fn config(certificates: Vec<Certificate>) -> Config {
    Config {
        certificates,
        ..Config::default()
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The subject of the leaf the resolver picks for `sni`.
fn served(resolver: &SniResolver, sni: Option<&str>) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let key = resolver.pick(sni)?;
    let (_, leaf) = X509Certificate::from_der(key.cert[0].as_ref()).ok()?;
    Some(leaf.subject().to_string())
}

#[test]
fn named_certificates_are_served_by_sni() {
    let mut wild = named("wild", "wild", "wild");
    wild.hosts = vec!["*.wild.test".into(), "extra.test".into()];
    let c = config(vec![named("a", "a", "a"), named("b", "b", "b"), wild]);
    let resolver = resolver_for(&c, &provider()).unwrap().unwrap();
    assert_eq!(
        served(&resolver, Some("b.test")).as_deref(),
        Some("CN=b.test")
    );
    assert_eq!(
        served(&resolver, Some("WWW.A.TEST")).as_deref(),
        Some("CN=a.test")
    );
    assert_eq!(
        served(&resolver, Some("x.wild.test")).as_deref(),
        Some("CN=*.wild.test")
    );
    assert_eq!(
        served(&resolver, Some("extra.test")).as_deref(),
        Some("CN=*.wild.test")
    );
    // Unknown names and no SNI: the first certificate.
    assert_eq!(
        served(&resolver, Some("nope.test")).as_deref(),
        Some("CN=a.test")
    );
    assert_eq!(served(&resolver, None).as_deref(), Some("CN=a.test"));
    assert!(TlsSettings::load(&c).unwrap().is_some());
    assert!(TlsSettings::load(&Config::default()).unwrap().is_none());
}

#[test]
fn files_come_before_named_certificates() {
    let dir = std::env::temp_dir().join(format!("tollgate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("b.crt.pem"), dir.join("b.key.pem"));
    std::fs::write(&cert, pem("b.crt")).unwrap();
    std::fs::write(&key, pem("b.key")).unwrap();
    let mut c = config(vec![named("a", "a", "a")]);
    c.tls.certificates.push(CertificateFile {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        hosts: vec!["b.test".into(), "a.test".into()],
    });
    let resolver = resolver_for(&c, &provider()).unwrap().unwrap();
    assert_eq!(
        served(&resolver, Some("a.test")).as_deref(),
        Some("CN=b.test")
    );
    assert_eq!(
        served(&resolver, Some("www.a.test")).as_deref(),
        Some("CN=a.test")
    );
    assert_eq!(served(&resolver, None).as_deref(), Some("CN=b.test"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_key_that_does_not_match_is_reported_at_key_without_quoting_it() {
    let c = config(vec![named("a", "a", "a"), named("mixed", "b", "a")]);
    let errors = resolver_for(&c, &provider()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path.to_string(), "certificates[1].key");
    assert!(
        errors[0].message.contains("does not match"),
        "{}",
        errors[0].message
    );

    let mut garbage = named("g", "a", "a");
    garbage.key = Some("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n".into());
    let errors = resolver_for(&config(vec![garbage]), &provider()).unwrap_err();
    assert_eq!(errors[0].path.to_string(), "certificates[0].key");
    assert!(
        !errors[0].message.contains("c2VjcmV0"),
        "{}",
        errors[0].message
    );
}

#[test]
fn an_encrypted_key_cannot_be_compiled() {
    let mut c = named("a", "a", "a");
    c.key = None;
    c.key_encrypted = Some("v1:abc".into());
    let errors = resolver_for(&config(vec![c]), &provider()).unwrap_err();
    assert_eq!(errors[0].path.to_string(), "certificates[0].key_encrypted");
}

#[test]
fn an_expired_certificate_is_served_with_a_warning() {
    let c = config(vec![named("old", "expired", "expired")]);
    let resolver = resolver_for(&c, &provider()).unwrap().unwrap();
    assert_eq!(
        served(&resolver, Some("old.test")).as_deref(),
        Some("CN=old.test")
    );
}
