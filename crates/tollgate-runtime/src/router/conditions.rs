//! Method, header and query conditions of a route.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, Method};
use percent_encoding::percent_decode_str;
use regex::Regex;

/// A test on a header or query value.
#[derive(Debug, Clone)]
pub(crate) enum ValueTest {
    Equals(String),
    Regex(Regex),
    Present(bool),
}

impl ValueTest {
    fn check(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Self::Present(want), v) => *want == v.is_some(),
            (Self::Equals(expected), Some(v)) => v == expected,
            (Self::Regex(re), Some(v)) => re.is_match(v),
            (_, None) => false,
        }
    }
}

/// Everything besides host and path that a route requires.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    /// Allowed methods; empty means any.
    pub(crate) methods: Vec<Method>,
    pub(crate) headers: Vec<(HeaderName, ValueTest)>,
    pub(crate) query: Vec<(String, ValueTest)>,
}

impl Conditions {
    /// How specific these conditions are; more specific candidates are tried first.
    pub(crate) fn weight(&self) -> usize {
        self.headers.len() * 2 + self.query.len() * 2 + usize::from(!self.methods.is_empty())
    }

    /// Whether the path-matched request also satisfies these conditions.
    pub(crate) fn check(&self, method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return false;
        }
        for (name, test) in &self.headers {
            let mut values = headers.get_all(name).iter().peekable();
            let ok = if values.peek().is_none() {
                test.check(None)
            } else {
                values.any(|v| test.check(v.to_str().ok()))
            };
            if !ok {
                return false;
            }
        }
        for (name, test) in &self.query {
            let value = query.and_then(|q| query_value(q, name));
            if !test.check(value.as_deref()) {
                return false;
            }
        }
        true
    }
}

/// The first value of query parameter `name` (form-decoded).
fn query_value<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let plus = s.replace('+', " ");
    Cow::Owned(percent_decode_str(&plus).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_header_tests() {
        let c = Conditions {
            methods: vec![Method::GET],
            headers: vec![(
                HeaderName::from_static("x-canary"),
                ValueTest::Equals("1".into()),
            )],
            query: vec![(
                "debug mode".into(),
                ValueTest::Regex(Regex::new("^(on|yes)$").unwrap()),
            )],
        };
        let mut h = HeaderMap::new();
        h.insert("x-canary", "1".parse().unwrap());
        assert!(c.check(&Method::GET, &h, Some("a=1&debug+mode=on")));
        assert!(c.check(&Method::GET, &h, Some("debug%20mode=yes")));
        assert!(!c.check(&Method::GET, &h, Some("debug+mode=off")));
        assert!(!c.check(&Method::POST, &h, Some("debug+mode=on")));
        assert!(!c.check(&Method::GET, &HeaderMap::new(), Some("debug+mode=on")));
        let absent = Conditions {
            headers: vec![(HeaderName::from_static("x-a"), ValueTest::Present(false))],
            ..Conditions::default()
        };
        assert!(absent.check(&Method::GET, &HeaderMap::new(), None));
        assert!(!absent.check(
            &Method::GET,
            &{
                let mut h = HeaderMap::new();
                h.insert("x-a", "".parse().unwrap());
                h
            },
            None
        ));
    }
}
