//! Header hygiene between client and upstream: hop-by-hop removal and forwarding headers.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;
use tollgate_upstream::Overrides;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Below this many values a map is searched by comparing names, cheaper than hashing the name
/// for a lookup: requests from API clients carry a handful of fields.
const SCAN_BELOW: usize = 8;

/// The first value of `name`, as `HeaderMap::get` finds it.
#[inline]
pub(crate) fn first<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    if headers.len() < SCAN_BELOW {
        headers.iter().find_map(|(n, v)| (n == name).then_some(v))
    } else {
        headers.get(name)
    }
}

/// Whether `headers` has a field `name`.
#[inline]
pub(crate) fn has(headers: &HeaderMap, name: &HeaderName) -> bool {
    first(headers, name).is_some()
}

/// Which of the fields the pipeline asks about a request has, found in one pass over its
/// names: that answers what were otherwise one lookup each, most of them for fields a request
/// does not have. Taken again after anything that may change the fields (policies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Seen(u8);

impl Seen {
    pub(crate) const HOST: u8 = 1;
    pub(crate) const CONTENT_LENGTH: u8 = 1 << 1;
    pub(crate) const TRANSFER_ENCODING: u8 = 1 << 2;
    pub(crate) const EXPECT: u8 = 1 << 3;
    pub(crate) const UPGRADE: u8 = 1 << 4;

    /// The fields of `headers`.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut bits = 0;
        for name in headers.keys() {
            bits |= if name == header::HOST {
                Self::HOST
            } else if name == header::CONTENT_LENGTH {
                Self::CONTENT_LENGTH
            } else if name == header::TRANSFER_ENCODING {
                Self::TRANSFER_ENCODING
            } else if name == header::EXPECT {
                Self::EXPECT
            } else if name == header::UPGRADE {
                Self::UPGRADE
            } else {
                0
            };
        }
        Self(bits)
    }

    /// Whether the field `bit` (one of the constants) is there.
    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Notes that the field `bit` was added.
    pub(crate) fn add(&mut self, bit: u8) {
        self.0 |= bit;
    }
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including every header the `Connection`
/// header names. `Trailer` is end-to-end (it announces trailer fields) and stays. `TE: trailers`
/// survives (it asks for trailers end to end); with `upgrade`, `Upgrade` survives and
/// `Connection: upgrade` is set again.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // One pass over the names finds which hop-by-hop headers are present; only those are
    // looked up and removed (a lookup of an absent name still hashes it).
    let mut present = 0u8;
    for name in headers.keys() {
        present |= hop_by_hop_bit(name);
    }
    if present == 0 {
        if upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
    // `TE` named in `Connection` goes entirely, `trailers` included.
    let mut te_named = false;
    if present & CONNECTION != 0 {
        // Names listed in `Connection`: the usual tokens (`keep-alive`, `close`, `upgrade`)
        // are hop-by-hop headers already handled below; any other names an extension header.
        let mut named: Option<Vec<HeaderName>> = None;
        for value in headers.get_all(header::CONNECTION) {
            for token in value.as_bytes().split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.is_empty()
                    || token.eq_ignore_ascii_case(b"close")
                    || token.eq_ignore_ascii_case(b"keep-alive")
                    || token.eq_ignore_ascii_case(b"upgrade")
                {
                    continue;
                }
                if token.eq_ignore_ascii_case(b"te") {
                    te_named = true;
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(token) {
                    named.get_or_insert_with(Vec::new).push(name);
                }
            }
        }
        for name in named.into_iter().flatten() {
            headers.remove(&name);
        }
        headers.remove(header::CONNECTION);
    }
    if present & KEEP_ALIVE_BIT != 0 {
        headers.remove(&KEEP_ALIVE);
    }
    if present & PROXY_CONNECTION_BIT != 0 {
        headers.remove(&PROXY_CONNECTION);
    }
    if present & TRANSFER_ENCODING != 0 {
        headers.remove(header::TRANSFER_ENCODING);
    }
    if present & TE != 0 {
        let te_trailers = !te_named
            && headers
                .get_all(header::TE)
                .iter()
                .flat_map(|v| v.as_bytes().split(|b| *b == b','))
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"trailers"));
        headers.remove(header::TE);
        if te_trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if present & UPGRADE != 0 {
        headers.remove(header::UPGRADE);
    }
}

const CONNECTION: u8 = 1;
const TE: u8 = 2;
const TRANSFER_ENCODING: u8 = 4;
const UPGRADE: u8 = 8;
const KEEP_ALIVE_BIT: u8 = 16;
const PROXY_CONNECTION_BIT: u8 = 32;

fn hop_by_hop_bit(name: &HeaderName) -> u8 {
    if name == header::CONNECTION {
        CONNECTION
    } else if name == header::TE {
        TE
    } else if name == header::TRANSFER_ENCODING {
        TRANSFER_ENCODING
    } else if name == header::UPGRADE {
        UPGRADE
    } else if name == KEEP_ALIVE {
        KEEP_ALIVE_BIT
    } else if name == PROXY_CONNECTION {
        PROXY_CONNECTION_BIT
    } else {
        0
    }
}

/// Whether `ip` is one of the trusted proxies.
pub(crate) fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    !trusted.is_empty() && trusted.iter().any(|n| n.contains(&canonical(ip)))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address: the peer, or — when the peer is a trusted proxy — the right-most
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !is_trusted(client, trusted) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// A connection peer's address, preformatted once per connection for forwarding headers.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The address as an `X-Forwarded-For` element.
    text: HeaderValue,
    /// The `for=` parameter of a `Forwarded` element (IPv6 quoted and bracketed).
    forwarded_for: Box<str>,
}

impl Peer {
    pub(crate) fn new(ip: IpAddr) -> Self {
        let ip = canonical(ip);
        let text = ip.to_string();
        let forwarded_for = match ip {
            IpAddr::V4(_) => format!("for={text}"),
            IpAddr::V6(_) => format!("for=\"[{text}]\""),
        };
        Self {
            text: HeaderValue::from_str(&text)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            forwarded_for: forwarded_for.into_boxed_str(),
        }
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host` and `Forwarded` (RFC 7239). Incoming values are kept
/// (and appended to) only when the peer is trusted; otherwise they are replaced.
pub(crate) fn set_forwarded<'a>(
    headers: &mut HeaderMap,
    out: &mut Overrides<'a>,
    peer: &Peer,
    trusted_peer: bool,
    tls: bool,
    host: Option<&HeaderValue>,
) {
    // At most four fields are set here, and the caller sets two more: within
    // `MAX_OVERRIDES`, so `set` cannot fail.
    let proto = if tls { "https" } else { "http" };
    let xff = match trusted_peer
        .then(|| joined(headers, &X_FORWARDED_FOR))
        .flatten()
    {
        Some(prev) => crate::values::joined(&[prev.as_bytes(), b", ", peer.text.as_bytes()]),
        None => Some(peer.text.clone()),
    };
    if let Some(v) = xff {
        let _ = out.set(&X_FORWARDED_FOR, v);
    }
    if !(trusted_peer && has(headers, &X_FORWARDED_PROTO)) {
        let _ = out.set(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !(trusted_peer && has(headers, &X_FORWARDED_HOST)) {
        match host {
            Some(h) => {
                let _ = out.set(&X_FORWARDED_HOST, h.clone());
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }

    let host = host.map(HeaderValue::as_bytes).filter(|h| {
        h.iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
    });
    let (host_key, host) = match host {
        Some(h) => (&b";host="[..], h),
        None => (&b""[..], &b""[..]),
    };
    let element: [&[u8]; 5] = [
        peer.forwarded_for.as_bytes(),
        host_key,
        host,
        b";proto=",
        proto.as_bytes(),
    ];
    let forwarded = match trusted_peer
        .then(|| joined(headers, &header::FORWARDED))
        .flatten()
    {
        Some(prev) => {
            let [a, b, c, d, e] = element;
            crate::values::joined(&[prev.as_bytes(), b", ", a, b, c, d, e])
        }
        None => crate::values::joined_again(&element),
    };
    match forwarded {
        Some(v) => {
            let _ = out.set(&header::FORWARDED, v);
        }
        None => {
            headers.remove(header::FORWARDED);
        }
    }
}

fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let mut out = first.to_owned();
    for v in values {
        out.push_str(", ");
        out.push_str(v);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_tells_which_fields_are_there() {
        let mut h = HeaderMap::new();
        assert_eq!(Seen::of(&h), Seen::default());
        h.append(header::HOST, HeaderValue::from_static("a"));
        h.append(header::HOST, HeaderValue::from_static("b"));
        h.append(X_FORWARDED_FOR.clone(), HeaderValue::from_static("1.2.3.4"));
        h.append(header::EXPECT, HeaderValue::from_static("100-continue"));
        let seen = Seen::of(&h);
        assert!(seen.has(Seen::HOST) && seen.has(Seen::EXPECT));
        for absent in [Seen::CONTENT_LENGTH, Seen::TRANSFER_ENCODING, Seen::UPGRADE] {
            assert!(!seen.has(absent));
        }
        h.append(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
        h.append(header::UPGRADE, HeaderValue::from_static("websocket"));
        let mut seen = Seen::of(&h);
        for bit in [Seen::CONTENT_LENGTH, Seen::TRANSFER_ENCODING, Seen::UPGRADE] {
            assert!(seen.has(bit));
        }
        let mut none = Seen::default();
        none.add(Seen::HOST);
        assert!(none.has(Seen::HOST) && !none.has(Seen::EXPECT));
        seen.add(Seen::HOST);
        assert!(seen.has(Seen::HOST));
    }

    #[test]
    fn first_and_has_find_what_get_finds_in_small_and_large_maps() {
        for extra in [0usize, 3, 12] {
            let mut h = HeaderMap::new();
            for i in 0..extra {
                h.append(
                    HeaderName::from_bytes(format!("x-f{i}").as_bytes()).unwrap(),
                    HeaderValue::from_static("v"),
                );
            }
            h.append(header::HOST, HeaderValue::from_static("a"));
            h.append(header::HOST, HeaderValue::from_static("b"));
            h.append(X_FORWARDED_FOR.clone(), HeaderValue::from_static("1.2.3.4"));
            for name in [
                header::HOST,
                X_FORWARDED_FOR.clone(),
                header::EXPECT,
                KEEP_ALIVE.clone(),
            ] {
                assert_eq!(first(&h, &name), h.get(&name), "{name} with {extra} others");
                assert_eq!(has(&h, &name), h.contains_key(&name));
            }
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn removes_hop_by_hop_and_connection_named_headers() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret, te"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["trailer", "x-kept"]);

        let mut h = map(&[
            ("te", "gzip, trailers"),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
        ]);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    /// `set_forwarded`, with the fields put into the map as a request not written by the
    /// HTTP/1.1 encoder gets them.
    fn forward(
        h: &mut HeaderMap,
        peer: &Peer,
        trusted: bool,
        tls: bool,
        host: Option<&HeaderValue>,
    ) {
        let mut o = Overrides::default();
        set_forwarded(h, &mut o, peer, trusted, tls, host);
        o.apply_to(h);
    }

    #[test]
    fn forwarded_headers_from_untrusted_peer_are_replaced() {
        let mut h = map(&[("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6")]);
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        forward(
            &mut h,
            &Peer::new(peer),
            false,
            true,
            Some(&HeaderValue::from_static("api.example.com")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(
            h["forwarded"],
            "for=10.0.0.9;host=api.example.com;proto=https"
        );
    }

    #[test]
    fn trusted_peer_chain_is_extended_and_client_found() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = map(&[("x-forwarded-for", "1.2.3.4, 10.1.1.1")]);
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("8.8.8.8".parse().unwrap(), &h, &trusted),
            "8.8.8.8".parse::<IpAddr>().unwrap()
        );
        let mut h = h;
        forward(&mut h, &Peer::new(peer), true, false, None);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.1.1.1, 10.0.0.2");
        let v6: IpAddr = "::1".parse().unwrap();
        let mut h = HeaderMap::new();
        forward(&mut h, &Peer::new(v6), false, false, None);
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
    }
}
