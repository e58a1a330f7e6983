//! Which origins a `cors` policy allows: parsing `allow_origins` / `allow_origin_regex` at build
//! time and matching a request's `Origin` against them.
//!
//! An entry of `allow_origins` is one of
//! - `*`: every origin (refused together with `allow_credentials: true`, and alone only);
//! - an exact serialized origin, `scheme://host[:port]` with no path (`https://app.example.com`);
//!   the default port of `http`/`https` is dropped, as browsers do;
//! - a subdomain pattern `scheme://*.example.com[:port]`: any origin of that scheme and port
//!   whose host ends in `.example.com` with one or more labels before it (`a.example.com`,
//!   `a.b.example.com`), never `example.com` itself;
//! - `null`, the origin of sandboxed documents and `file:` pages (allow it only on purpose).
//!
//! `allow_origin_regex` entries must match the whole origin (they are anchored) and are
//! case-sensitive as written (browsers send origins in lowercase). The other entries ignore
//! ASCII case.

use http::HeaderValue;
use regex::{Regex, RegexSet};
use tollgate_plugin_api::PolicyConfigError;

use crate::config::field;

const ORIGIN_SHAPE: &str = "an origin is scheme://host[:port] (e.g. https://app.example.com), \
                            scheme://*.domain for subdomains, or *";

/// The compiled origin allowlist.
#[derive(Debug, Clone)]
pub(super) struct AllowedOrigins {
    any: bool,
    exact: Box<[Box<str>]>,
    subdomains: Box<[Subdomains]>,
    regexes: Option<RegexSet>,
}

/// `scheme://*.suffix`: `prefix` is `scheme://`, `suffix` is `.domain[:port]`, both lowercase.
#[derive(Debug, Clone)]
struct Subdomains {
    prefix: Box<str>,
    suffix: Box<str>,
}

enum Entry {
    Any,
    Exact(String),
    Subdomains(Subdomains),
}

impl AllowedOrigins {
    /// Validates the two lists; errors name the entry, e.g. `allow_origins[2]`.
    pub(super) fn compile(
        origins: &[String],
        regexes: &[String],
        credentials: bool,
    ) -> Result<Self, PolicyConfigError> {
        if origins.is_empty() && regexes.is_empty() {
            return Err(PolicyConfigError::new(
                field("allow_origins"),
                "list at least one origin (\"*\" allows every origin) or an allow_origin_regex",
            ));
        }
        let mut any = false;
        let mut exact = Vec::new();
        let mut subdomains = Vec::new();
        for (i, raw) in origins.iter().enumerate() {
            let path = field("allow_origins").index(i);
            match parse_entry(raw).map_err(|m| PolicyConfigError::new(path.clone(), m))? {
                Entry::Any if credentials => {
                    return Err(PolicyConfigError::new(
                        path,
                        "\"*\" cannot be used with allow_credentials: true: the Fetch standard \
                         forbids `Access-Control-Allow-Origin: *` on credentialed requests and \
                         browsers reject it; list the origins or use a pattern such as \
                         https://*.example.com",
                    ));
                }
                Entry::Any if origins.len() > 1 || !regexes.is_empty() => {
                    return Err(PolicyConfigError::new(
                        path,
                        "\"*\" already allows every origin; remove the other origins and \
                         allow_origin_regex, or remove \"*\"",
                    ));
                }
                Entry::Any => any = true,
                Entry::Exact(origin) => exact.push(origin.into_boxed_str()),
                Entry::Subdomains(pattern) => subdomains.push(pattern),
            }
        }
        let mut anchored = Vec::with_capacity(regexes.len());
        for (i, raw) in regexes.iter().enumerate() {
            let pattern = format!("^(?:{raw})$");
            Regex::new(&pattern).map_err(|e| {
                PolicyConfigError::new(field("allow_origin_regex").index(i), e.to_string())
            })?;
            anchored.push(pattern);
        }
        let regexes =
            if anchored.is_empty() {
                None
            } else {
                Some(RegexSet::new(&anchored).map_err(|e| {
                    PolicyConfigError::new(field("allow_origin_regex"), e.to_string())
                })?)
            };
        Ok(Self {
            any,
            exact: exact.into(),
            subdomains: subdomains.into(),
            regexes,
        })
    }

    /// True when every origin is allowed (`*`).
    pub(super) fn any(&self) -> bool {
        self.any
    }

    /// True when a request's `Origin` value is allowed.
    pub(super) fn allows(&self, origin: &HeaderValue) -> bool {
        if self.any {
            return true;
        }
        let origin = origin.as_bytes();
        self.exact
            .iter()
            .any(|e| e.as_bytes().eq_ignore_ascii_case(origin))
            || self.subdomains.iter().any(|p| p.matches(origin))
            || self.regexes.as_ref().is_some_and(|set| {
                // Origins are ASCII; one that is not cannot match a written pattern anyway.
                std::str::from_utf8(origin).is_ok_and(|o| set.is_match(o))
            })
    }
}

impl Subdomains {
    fn matches(&self, origin: &[u8]) -> bool {
        let (prefix, suffix) = (self.prefix.as_bytes(), self.suffix.as_bytes());
        let Some(middle_end) = origin.len().checked_sub(suffix.len()) else {
            return false;
        };
        let (Some(head), Some(tail), Some(middle)) = (
            origin.get(..prefix.len()),
            origin.get(middle_end..),
            origin.get(prefix.len()..middle_end),
        ) else {
            return false;
        };
        head.eq_ignore_ascii_case(prefix)
            && tail.eq_ignore_ascii_case(suffix)
            && !middle.is_empty()
            && middle.split(|&b| b == b'.').all(is_label)
    }
}

fn is_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

fn parse_entry(raw: &str) -> Result<Entry, String> {
    if raw == "*" {
        return Ok(Entry::Any);
    }
    if raw.eq_ignore_ascii_case("null") {
        return Ok(Entry::Exact("null".to_owned()));
    }
    let lower = raw.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(format!("{raw:?}: {ORIGIN_SHAPE}"));
    };
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(format!("{raw:?} has an invalid scheme; {ORIGIN_SHAPE}"));
    }
    if let Some(at) = rest.find(['/', '?', '#']) {
        return Err(format!(
            "{raw:?} has a path; an origin has none (drop {:?})",
            &rest[at..]
        ));
    }
    let (host, port) = split_port(rest).ok_or_else(|| format!("{raw:?}: {ORIGIN_SHAPE}"))?;
    let port = match port {
        None => None,
        Some(p) => Some(
            Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{raw:?} has an invalid port {p:?}"))?,
        ),
    };
    // Browsers serialize an origin without its scheme's default port.
    let port = port.filter(|p| !matches!((scheme, *p), ("https", 443) | ("http", 80)));
    let port = port.map_or(String::new(), |p| format!(":{p}"));
    if let Some(domain) = host.strip_prefix("*.") {
        if !is_hostname(domain) {
            return Err(format!(
                "{raw:?}: a subdomain pattern is scheme://*.domain[:port] with \"*\" only as \
                 the leftmost label"
            ));
        }
        return Ok(Entry::Subdomains(Subdomains {
            prefix: format!("{scheme}://").into(),
            suffix: format!(".{domain}{port}").into(),
        }));
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    if !ipv6 && !is_hostname(host) {
        return Err(format!(
            "{raw:?} has an invalid host{}; {ORIGIN_SHAPE}",
            if host.contains('*') {
                " (\"*\" may only be the leftmost label: scheme://*.domain)"
            } else {
                ""
            }
        ));
    }
    Ok(Entry::Exact(format!("{scheme}://{host}{port}")))
}

/// Splits `host[:port]` (host may be a bracketed IPv6 address).
fn split_port(rest: &str) -> Option<(&str, Option<&str>)> {
    if rest.starts_with('[') {
        let close = rest.find(']')?;
        let (host, after) = rest.split_at(close + 1);
        return match after {
            "" => Some((host, None)),
            _ => after.strip_prefix(':').map(|p| (host, Some(p))),
        };
    }
    Some(match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty() && host.as_bytes().split(|&b| b == b'.').all(is_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(origins: &[&str]) -> AllowedOrigins {
        let origins: Vec<String> = origins.iter().map(|s| s.to_string()).collect();
        AllowedOrigins::compile(&origins, &[], false).unwrap()
    }

    fn allows(set: &AllowedOrigins, origin: &'static str) -> bool {
        set.allows(&HeaderValue::from_static(origin))
    }

    #[test]
    fn exact_origins_match_ignoring_case_and_default_ports() {
        let set = allowed(&[
            "https://App.example.com",
            "http://localhost:3000",
            "https://x.io:443",
        ]);
        assert!(allows(&set, "https://app.example.com"));
        assert!(allows(&set, "http://localhost:3000"));
        assert!(allows(&set, "https://x.io"));
        assert!(!allows(&set, "http://app.example.com"));
        assert!(!allows(&set, "http://localhost:3001"));
        assert!(!allows(&set, "https://app.example.com.evil.io"));
        assert!(!allows(&set, "null"));
    }

    #[test]
    fn subdomain_patterns_match_one_or_more_labels_but_not_the_apex() {
        let set = allowed(&["https://*.example.com"]);
        assert!(allows(&set, "https://a.example.com"));
        assert!(allows(&set, "https://a.b.example.com"));
        assert!(!allows(&set, "https://example.com"));
        assert!(!allows(&set, "https://.example.com"));
        assert!(!allows(&set, "https://evilexample.com"));
        assert!(!allows(&set, "http://a.example.com"));
        assert!(!allows(&set, "https://a.example.com:8443"));
        assert!(!allows(&set, "https://a.example.com.evil.io"));
        assert!(!allows(&set, "https://x@a.example.com"));
        let with_port = allowed(&["https://*.example.com:8443"]);
        assert!(allows(&with_port, "https://a.example.com:8443"));
        assert!(!allows(&with_port, "https://a.example.com"));
    }

    #[test]
    fn regexes_are_anchored() {
        let set = AllowedOrigins::compile(
            &[],
            &[r"https://pr-\d+\.preview\.example\.com".to_owned()],
            true,
        )
        .unwrap();
        assert!(allows(&set, "https://pr-42.preview.example.com"));
        assert!(!allows(&set, "https://pr-42.preview.example.com.evil.io"));
        assert!(!allows(&set, "xhttps://pr-42.preview.example.com"));
    }

    #[test]
    fn star_allows_everything() {
        let set = allowed(&["*"]);
        assert!(set.any());
        assert!(allows(&set, "https://whoever.test"));
        assert!(allows(&set, "null"));
    }

    #[test]
    fn bad_entries_name_their_index() {
        for (bad, hint) in [
            ("https://a.com/", "has a path"),
            ("a.com", "scheme://host"),
            ("https://", "invalid host"),
            ("https://a.*.com", "leftmost"),
            ("https://*.com*", "leftmost"),
            ("https://a.com:0", "invalid port"),
            ("https://a.com:99999", "invalid port"),
            ("1http://a.com", "invalid scheme"),
        ] {
            let origins = vec!["https://ok.com".to_owned(), bad.to_owned()];
            let err = AllowedOrigins::compile(&origins, &[], false).unwrap_err();
            assert_eq!(err.path.to_string(), "allow_origins[1]", "{bad}");
            assert!(err.message.contains(hint), "{bad}: {}", err.message);
        }
        let err =
            AllowedOrigins::compile(&[], &["ok".to_owned(), "(".to_owned()], false).unwrap_err();
        assert_eq!(err.path.to_string(), "allow_origin_regex[1]");
        let err = AllowedOrigins::compile(&[], &[], false).unwrap_err();
        assert_eq!(err.path.to_string(), "allow_origins");
    }

    #[test]
    fn star_is_refused_with_credentials_or_other_entries() {
        let err =
            AllowedOrigins::compile(&["https://a.com".into(), "*".into()], &[], true).unwrap_err();
        assert_eq!(err.path.to_string(), "allow_origins[1]");
        assert!(err.message.contains("allow_credentials"), "{}", err.message);
        let err =
            AllowedOrigins::compile(&["https://a.com".into(), "*".into()], &[], false).unwrap_err();
        assert!(err.message.contains("already allows"), "{}", err.message);
    }
}
