//! Response headers announcing that an API version is deprecated in an environment:
//! `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link: <...>; rel="deprecation"`.
//!
//! They are formatted once, when the snapshot is compiled, and sent on every response of the
//! version's routes from the moment the deprecation is configured, whether its date is past or
//! still to come: RFC 9745 lets the date lie in the future ("will be deprecated"), so the
//! request path never reads a clock for them.

use http::{HeaderMap, HeaderName, HeaderValue, header};
use tollgate_model::Deprecation;

static DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
static SUNSET: HeaderName = HeaderName::from_static("sunset");

/// The preformatted headers of one deprecation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeprecationHeaders {
    /// `@<unix seconds>`: a structured-field date (RFC 9651 §3.3.7).
    pub deprecation: HeaderValue,
    /// IMF-fixdate, e.g. `Thu, 31 Dec 2026 00:00:00 GMT`.
    pub sunset: Option<HeaderValue>,
    /// `<url>; rel="deprecation"`.
    pub link: Option<HeaderValue>,
}

impl DeprecationHeaders {
    /// Formats `deprecation`; an error names the field that cannot be sent (`link`).
    pub fn new(deprecation: &Deprecation) -> Result<Self, String> {
        let text = format!("@{}", deprecation.at.unix_seconds());
        let link = match &deprecation.link {
            Some(url) => Some(
                HeaderValue::from_str(&format!("<{url}>; rel=\"deprecation\""))
                    .map_err(|_| format!("{url:?} cannot be sent in a Link header"))?,
            ),
            None => None,
        };
        Ok(Self {
            deprecation: HeaderValue::from_str(&text)
                .map_err(|_| "the deprecation date cannot be formatted".to_owned())?,
            sunset: deprecation.sunset.and_then(|t| {
                HeaderValue::from_str(&httpdate::fmt_http_date(t.system_time())).ok()
            }),
            link,
        })
    }

    /// Adds the headers to a response: `Deprecation` and `Sunset` replace any the upstream
    /// sent (the gateway's configuration is the authority), `Link` is added to the upstream's.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(&DEPRECATION, self.deprecation.clone());
        if let Some(sunset) = &self.sunset {
            headers.insert(&SUNSET, sunset.clone());
        }
        if let Some(link) = &self.link {
            headers.append(header::LINK, link.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use tollgate_model::Timestamp;

    use super::*;

    #[test]
    fn headers_follow_the_rfcs() {
        let d = Deprecation {
            at: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            sunset: Some(Timestamp::parse("2026-12-31T00:00:00Z").unwrap()),
            link: Some("https://docs.example.com/migrate".into()),
        };
        let h = DeprecationHeaders::new(&d).unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            header::LINK,
            HeaderValue::from_static("</next>; rel=\"next\""),
        );
        headers.insert("deprecation", HeaderValue::from_static("@1"));
        h.apply(&mut headers);
        assert_eq!(headers["deprecation"], "@1767225600");
        assert_eq!(headers["sunset"], "Thu, 31 Dec 2026 00:00:00 GMT");
        let links: Vec<_> = headers.get_all(header::LINK).iter().collect();
        assert_eq!(
            links,
            [
                "</next>; rel=\"next\"",
                "<https://docs.example.com/migrate>; rel=\"deprecation\""
            ]
        );
        let bare = DeprecationHeaders::new(&Deprecation {
            sunset: None,
            link: None,
            ..d
        })
        .unwrap();
        let mut headers = HeaderMap::new();
        bare.apply(&mut headers);
        assert_eq!(headers.len(), 1);
    }
}
