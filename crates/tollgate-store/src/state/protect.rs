//! Turning secrets given in clear into their stored form before they reach the store.

use tollgate_model::{Consumer, Credential};

use crate::StoreError;
use crate::secrets::{self, SecretKey};

/// `consumer` with every clear secret replaced by its stored form: API keys by their SHA-256,
/// passwords by an Argon2id hash, signing secrets encrypted with `key`. Where `previous` holds
/// the same credential whose stored form already matches the clear secret, that form is kept,
/// so that re-applying the same file changes nothing.
pub fn protect_consumer(
    consumer: &Consumer,
    previous: Option<&Consumer>,
    key: &SecretKey,
) -> Result<Consumer, StoreError> {
    let mut out = consumer.clone();
    for credential in &mut out.credentials {
        let old = previous.and_then(|p| {
            p.credentials
                .iter()
                .find(|c| c.id() == credential.id() && c.kind() == credential.kind())
        });
        protect(credential, old, key)?;
    }
    Ok(out)
}

fn protect(
    credential: &mut Credential,
    old: Option<&Credential>,
    key: &SecretKey,
) -> Result<(), StoreError> {
    match credential {
        Credential::KeyAuth {
            key: clear,
            key_sha256,
            ..
        } => {
            // Both forms given: left as they are, for validation to refuse.
            if key_sha256.is_none()
                && let Some(text) = clear.take()
            {
                *key_sha256 = Some(secrets::sha256_hex(&text));
            }
        }
        Credential::BasicAuth {
            password,
            password_hash,
            ..
        } => {
            if password_hash.is_none()
                && let Some(text) = password.take()
            {
                let kept = match old {
                    Some(Credential::BasicAuth {
                        password_hash: Some(h),
                        ..
                    }) if secrets::verify_password(&text, h) => Some(h.clone()),
                    _ => None,
                };
                *password_hash = Some(match kept {
                    Some(h) => h,
                    None => secrets::hash_password(&text)?,
                });
            }
        }
        Credential::Hmac {
            secret,
            secret_encrypted,
            ..
        } => {
            let old = match old {
                Some(Credential::Hmac {
                    secret_encrypted, ..
                }) => secret_encrypted.as_deref(),
                _ => None,
            };
            encrypt(secret, secret_encrypted, old, key)?;
        }
        Credential::Jwt {
            secret,
            secret_encrypted,
            ..
        } => {
            let old = match old {
                Some(Credential::Jwt {
                    secret_encrypted, ..
                }) => secret_encrypted.as_deref(),
                _ => None,
            };
            encrypt(secret, secret_encrypted, old, key)?;
        }
    }
    Ok(())
}

pub(super) fn encrypt(
    clear: &mut Option<String>,
    stored: &mut Option<String>,
    old: Option<&str>,
    key: &SecretKey,
) -> Result<(), StoreError> {
    if stored.is_none()
        && let Some(text) = clear.take()
    {
        *stored = Some(match old {
            Some(c) if key.decrypt(c).is_ok_and(|p| p == text) => c.to_owned(),
            _ => key.encrypt(&text)?,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(credentials: Vec<Credential>) -> Consumer {
        Consumer {
            name: "app".into(),
            description: None,
            tags: vec![],
            groups: vec![],
            credentials,
            policies: vec![],
            grants: vec![],
        }
    }

    #[test]
    fn clear_secrets_never_survive_and_reprotecting_is_stable() {
        let key = SecretKey::from_bytes(&[1; 32]).unwrap();
        let input = consumer(vec![
            Credential::KeyAuth {
                id: "k".into(),
                key: Some("key-123".into()),
                key_sha256: None,
            },
            Credential::BasicAuth {
                id: "b".into(),
                username: "ann".into(),
                password: Some("pw".into()),
                password_hash: None,
            },
            Credential::Hmac {
                id: "h".into(),
                secret: Some("hs".into()),
                secret_encrypted: None,
            },
        ]);
        let first = protect_consumer(&input, None, &key).unwrap();
        let text = serde_json::to_string(&first).unwrap();
        assert!(
            !text.contains("key-123") && !text.contains("\"pw\"") && !text.contains("\"hs\""),
            "{text}"
        );
        let again = protect_consumer(&input, Some(&first), &key).unwrap();
        assert_eq!(first, again, "same clear secrets keep their stored form");
    }
}
