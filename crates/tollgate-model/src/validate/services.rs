//! Services: names, targets, mocks, and the syntax of target URLs.

use std::collections::HashMap;

use super::Validator;
use crate::{FieldPath, Service, var_references};

impl Validator {
    pub(super) fn services(&mut self, services: &[Service]) {
        let root = FieldPath::root().key("services");
        let mut seen = HashMap::new();
        for (i, service) in services.iter().enumerate() {
            let at = root.index(i);
            self.name(&at.key("name"), &service.name);
            if let Some(first) = seen.insert(service.name.as_str(), i) {
                self.err(
                    at.key("name"),
                    format!(
                        "duplicate service name {:?} (first defined at services[{first}])",
                        service.name
                    ),
                );
            }
            match (&service.mock, service.targets.is_empty()) {
                (Some(_), false) => self.err(
                    at.key("mock"),
                    "a service has either `targets` or `mock`, not both",
                ),
                (None, true) => self.err(
                    at.key("targets"),
                    "a service needs at least one target (or `mock`)",
                ),
                _ => {}
            }
            if let Some(mock) = &service.mock
                && !(200..=599).contains(&mock.status)
            {
                self.err(
                    at.key("mock").key("status"),
                    format!("{} is not a final HTTP status code (200-599)", mock.status),
                );
            }
            for (j, target) in service.targets.iter().enumerate() {
                // A URL with `${vars.NAME}` is checked once resolved, in each environment
                // that uses the service (see `variables`).
                if !matches!(var_references(&target.url), Ok(refs) if refs.is_empty()) {
                    continue;
                }
                if let Err(reason) = TargetUrl::parse(&target.url) {
                    self.err(at.key("targets").index(j).key("url"), reason);
                }
            }
            if !service.targets.is_empty() && service.targets.iter().all(|t| t.weight == 0) {
                self.err(at.key("targets"), "every target has weight 0");
            }
        }
    }
}

/// A parsed upstream target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// `true` for `https`.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (default 80/443).
    pub port: u16,
    /// Path prefix without trailing slash (empty when none).
    pub base_path: String,
}

impl TargetUrl {
    /// Parses `http[s]://host[:port][/base]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!(
                "target url {url:?} must start with http:// or https://"
            ));
        };
        if rest.contains(['?', '#', '@']) {
            return Err(format!(
                "target url {url:?} must not have a query, fragment or user info"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(format!("target url {url:?} has an unclosed '['"));
            };
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("target url {url:?} has no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("target url {url:?} has an invalid port {p:?}"))?,
            None if tls => 443,
            None => 80,
        };
        if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
            return Err(format!("target url {url:?} has a non-normalized path"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            base_path: path.trim_end_matches('/').to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{BASE, errors};
    use super::*;

    #[test]
    fn bad_target_urls() {
        for url in [
            "ftp://x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://h/a/../b",
        ] {
            assert!(TargetUrl::parse(url).is_err(), "{url}");
        }
        let t = TargetUrl::parse("https://[::1]/base/").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.base_path.as_str()),
            (true, "::1", 443, "/base")
        );
    }

    #[test]
    fn duplicate_service_names() {
        let e = errors(&format!("{BASE}  - name: s\n    mock: {{body: hi}}\n"));
        assert!(
            e.contains("services[1].name: duplicate service name \"s\""),
            "{e}"
        );
    }
}
