//! Consumers: names, credentials (one secret form each, identifiers that pick exactly one
//! consumer) and grants (existing APIs and environments).

use std::collections::{HashMap, HashSet};

use super::{Envs, Validator, is_name};
use crate::{Config, Consumer, Credential, FieldPath};

/// JWT signature algorithms a `jwt` credential may name.
const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// Credential identifiers that must be unique across consumers, with where each was seen.
#[derive(Default)]
struct Seen<'a> {
    usernames: HashMap<&'a str, FieldPath>,
    keys: HashMap<&'a str, FieldPath>,
    key_hashes: HashMap<&'a str, FieldPath>,
}

impl Validator {
    pub(super) fn consumers(&mut self, config: &Config, envs: &Envs<'_>) {
        if config.consumers.is_empty() {
            return;
        }
        let root = FieldPath::root().key("consumers");
        let mut apis: foldhash::HashSet<&str> =
            HashSet::with_capacity_and_hasher(config.apis.len(), Default::default());
        apis.extend(config.apis.iter().map(|a| a.name.as_str()));
        let mut names = HashMap::new();
        let mut seen = Seen::default();
        for (i, consumer) in config.consumers.iter().enumerate() {
            let at = root.index(i);
            self.name(&at.key("name"), &consumer.name);
            if let Some(first) = names.insert(consumer.name.as_str(), i) {
                self.err(
                    at.key("name"),
                    format!(
                        "duplicate consumer name {:?} (first defined at consumers[{first}])",
                        consumer.name
                    ),
                );
            }
            for (g, group) in consumer.groups.iter().enumerate() {
                if !is_name(group) {
                    self.err(
                        at.key("groups").index(g),
                        format!(
                            "{group:?} is not a valid group name (1-128 of letters, digits, '-', '_', '.')"
                        ),
                    );
                }
            }
            self.credentials(consumer, &at, &mut seen);
            self.grants(consumer, &at, &apis, envs);
        }
    }

    fn credentials<'a>(&mut self, consumer: &'a Consumer, at: &FieldPath, seen: &mut Seen<'a>) {
        let mut ids = HashMap::new();
        for (j, credential) in consumer.credentials.iter().enumerate() {
            let cat = at.key("credentials").index(j);
            self.name(&cat.key("id"), credential.id());
            if let Some(first) = ids.insert(credential.id(), j) {
                self.err(
                    cat.key("id"),
                    format!(
                        "duplicate credential id {:?} in consumer {:?} (first defined at credentials[{first}])",
                        credential.id(),
                        consumer.name
                    ),
                );
            }
            match credential {
                Credential::KeyAuth {
                    key, key_sha256, ..
                } => {
                    self.one_form(&cat, [("key", key), ("key_sha256", key_sha256)]);
                    if let Some(key) = key {
                        self.unique(&mut seen.keys, key, cat.key("key"), "key");
                    }
                    if let Some(hash) = key_sha256 {
                        if hash.len() == 64
                            && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                        {
                            self.unique(&mut seen.key_hashes, hash, cat.key("key_sha256"), "key");
                        } else {
                            self.err(
                                cat.key("key_sha256"),
                                "must be a SHA-256 digest: 64 lower-case hex digits",
                            );
                        }
                    }
                }
                Credential::BasicAuth {
                    username,
                    password,
                    password_hash,
                    ..
                } => {
                    let uat = cat.key("username");
                    if username.is_empty()
                        || username.contains(':')
                        || username.chars().any(char::is_control)
                    {
                        self.err(
                            uat.clone(),
                            format!("{username:?} is not a user name (not empty, no ':' and no control characters)"),
                        );
                    }
                    if let Some(first) = seen.usernames.get(username.as_str()) {
                        self.err(
                            uat,
                            format!(
                                "user name {username:?} is already used at {first}; a user name identifies one consumer"
                            ),
                        );
                    } else {
                        seen.usernames.insert(username, uat);
                    }
                    self.one_form(
                        &cat,
                        [("password", password), ("password_hash", password_hash)],
                    );
                    if let Some(hash) = password_hash
                        && !hash.starts_with("$argon2id$")
                    {
                        self.err(
                            cat.key("password_hash"),
                            "must be a PHC string of an Argon2id hash ($argon2id$...)",
                        );
                    }
                }
                Credential::Hmac {
                    secret,
                    secret_encrypted,
                    ..
                } => {
                    self.one_form(
                        &cat,
                        [("secret", secret), ("secret_encrypted", secret_encrypted)],
                    );
                }
                Credential::Jwt {
                    issuer,
                    algorithm,
                    public_key,
                    secret,
                    secret_encrypted,
                    ..
                } => {
                    if issuer.is_empty() {
                        self.err(cat.key("issuer"), "must not be empty");
                    }
                    if !JWT_ALGORITHMS.contains(&algorithm.as_str()) {
                        self.err(
                            cat.key("algorithm"),
                            format!(
                                "unknown algorithm {algorithm:?} (one of {})",
                                JWT_ALGORITHMS.join(", ")
                            ),
                        );
                    } else if algorithm.starts_with("HS") {
                        self.one_form(
                            &cat,
                            [("secret", secret), ("secret_encrypted", secret_encrypted)],
                        );
                        if public_key.is_some() {
                            self.err(
                                cat.key("public_key"),
                                format!("{algorithm} uses a shared secret, not a public key"),
                            );
                        }
                    } else {
                        match public_key {
                            None => self.err(
                                cat.key("public_key"),
                                format!("{algorithm} needs a public key (PEM)"),
                            ),
                            Some(pem) if !pem.trim_start().starts_with("-----BEGIN ") => self.err(
                                cat.key("public_key"),
                                "must be PEM text (-----BEGIN PUBLIC KEY----- ...)",
                            ),
                            Some(_) => {}
                        }
                        for (field, value) in
                            [("secret", secret), ("secret_encrypted", secret_encrypted)]
                        {
                            if value.is_some() {
                                self.err(
                                    cat.key(field),
                                    format!("{algorithm} verifies with `public_key`; a shared secret is only for HS256, HS384 and HS512"),
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Exactly one of two forms of a secret is given, and it is not empty.
    fn one_form(&mut self, at: &FieldPath, forms: [(&str, &Option<String>); 2]) {
        let [(a, first), (b, second)] = forms;
        match (first, second) {
            (Some(_), Some(_)) | (None, None) => {
                self.err(at.clone(), format!("set exactly one of `{a}` and `{b}`"));
            }
            (Some(v), None) | (None, Some(v)) if v.is_empty() => {
                let field = if first.is_some() { a } else { b };
                self.err(at.key(field), "must not be empty");
            }
            _ => {}
        }
    }

    /// Records `value` (a secret: never shown) as seen at `at`, or reports where it was first.
    fn unique<'a>(
        &mut self,
        seen: &mut HashMap<&'a str, FieldPath>,
        value: &'a str,
        at: FieldPath,
        what: &str,
    ) {
        if value.is_empty() {
            return;
        }
        match seen.get(value) {
            Some(first) => self.err(
                at,
                format!("the same {what} as {first}; a {what} identifies one consumer"),
            ),
            None => {
                seen.insert(value, at);
            }
        }
    }

    fn grants(
        &mut self,
        consumer: &Consumer,
        at: &FieldPath,
        apis: &foldhash::HashSet<&str>,
        envs: &Envs<'_>,
    ) {
        let mut granted = HashMap::new();
        for (k, grant) in consumer.grants.iter().enumerate() {
            let gat = at.key("grants").index(k);
            if !apis.contains(grant.api.as_str()) {
                self.err(gat.key("api"), format!("no API named {:?}", grant.api));
            }
            if let Some(first) = granted.insert(grant.api.as_str(), k) {
                self.err(
                    gat.key("api"),
                    format!("API {:?} is already granted at grants[{first}]", grant.api),
                );
            }
            for (m, env) in grant.environments.iter().enumerate() {
                if envs.get(env).is_none() {
                    self.err(
                        gat.key("environments").index(m),
                        format!("no environment named {env:?} ({})", envs.known()),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{errors, valid};

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_valid_set_of_consumers() {
        valid(&format!(
            r#"
services: [{{name: s, mock: {{}}}}]
apis: [{{name: users, routes: [{{name: r, paths: [/], service: s}}]}}]
consumers:
  - name: app
    groups: [partners]
    credentials:
      - {{type: key-auth, id: k1, key: s3cret}}
      - {{type: key-auth, id: k2, key_sha256: {HASH}}}
      - {{type: basic-auth, id: b, username: app, password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"}}
      - {{type: hmac, id: h, secret_encrypted: "v1:abc"}}
      - {{type: jwt, id: j1, issuer: "https://idp", algorithm: HS256, secret: x}}
      - {{type: jwt, id: j2, issuer: "https://idp", algorithm: EdDSA, public_key: "-----BEGIN PUBLIC KEY-----\nMCo=\n-----END PUBLIC KEY-----\n"}}
    grants: [{{api: users, environments: [prod]}}]
"#
        ));
    }

    #[test]
    fn consumer_mistakes_are_reported_with_their_paths() {
        let e = errors(&format!(
            r#"
apis: []
consumers:
  - name: a
    credentials:
      - {{type: key-auth, id: k, key: same}}
      - {{type: key-auth, id: k, key: x, key_sha256: {HASH}}}
      - {{type: key-auth, id: k3, key_sha256: ABC}}
      - {{type: basic-auth, id: b, username: "u:1", password: ""}}
      - {{type: hmac, id: h}}
      - {{type: jwt, id: j1, issuer: i, algorithm: none, secret: x}}
      - {{type: jwt, id: j2, issuer: i, algorithm: RS256, secret: x}}
      - {{type: jwt, id: j3, issuer: i, algorithm: HS512, public_key: "-----BEGIN PUBLIC KEY-----"}}
    grants: [{{api: nope, environments: [test]}}]
  - name: a
    credentials:
      - {{type: key-auth, id: k, key: same}}
      - {{type: basic-auth, id: b, username: "u:1", password: p}}
"#
        ));
        for expected in [
            "consumers[0].credentials[1].id: duplicate credential id \"k\" in consumer \"a\"",
            "consumers[0].credentials[1]: set exactly one of `key` and `key_sha256`",
            "consumers[0].credentials[2].key_sha256: must be a SHA-256 digest",
            "consumers[0].credentials[3].username: \"u:1\" is not a user name",
            "consumers[0].credentials[3].password: must not be empty",
            "consumers[0].credentials[4]: set exactly one of `secret` and `secret_encrypted`",
            "consumers[0].credentials[5].algorithm: unknown algorithm \"none\"",
            "consumers[0].credentials[6].public_key: RS256 needs a public key (PEM)",
            "consumers[0].credentials[6].secret: RS256 verifies with `public_key`",
            "consumers[0].credentials[7]: set exactly one of `secret` and `secret_encrypted`",
            "consumers[0].credentials[7].public_key: HS512 uses a shared secret",
            "consumers[0].grants[0].api: no API named \"nope\"",
            "consumers[0].grants[0].environments[0]: no environment named \"test\"",
            "consumers[1].name: duplicate consumer name \"a\"",
            "consumers[1].credentials[0].key: the same key as consumers[0].credentials[0].key",
            "consumers[1].credentials[1].username: user name \"u:1\" is already used at consumers[0].credentials[3].username",
        ] {
            assert!(e.contains(expected), "missing {expected:?} in:\n{e}");
        }
        assert!(!e.contains("same\""), "a key is never shown: {e}");
    }
}
