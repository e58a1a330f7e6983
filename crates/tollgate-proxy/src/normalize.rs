//! Request path normalization, applied before routing and modelled on Envoy's path
//! normalization options (`normalize_path`, `merge_slashes`,
//! `path_with_escaped_slashes_action`).
//!
//! The proxy routes on the normalized path *and* forwards exactly that path upstream, so the
//! router and the backend always see the same spelling: no percent-encoding or dot-segment
//! trick can reach a backend on a path that a rule was meant to block.
//!
//! The steps, in order:
//!
//! 1. validate: the path must be in origin form (start with `/`), contain no control
//!    characters or spaces, no malformed percent-escapes and no `%00`;
//! 2. percent-escapes: escapes of unreserved characters are decoded (when
//!    [`Options::decode_unreserved`]), every other escape is kept with upper-case hex digits;
//!    `%2F` / `%5C` are handled as [`Options::escaped_slashes`] says;
//! 3. merge runs of `/` (when [`Options::merge_slashes`]);
//! 4. remove `.` and `..` segments, RFC 3986 section 5.2.4 (when
//!    [`Options::remove_dot_segments`]).
//!
//! A segment spelled with escaped dots (`%2e`, `.%2E`, ...) is always recognised as a dot
//! segment, whatever the options: it is removed with the others, or, when dot segments are
//! kept, forwarded in its plain form (`.` / `..`), never in an encoded form that the router
//! and the backend could read differently.
//!
//! Decoding is single-pass: `%252e` stays `%252e` and is not a dot segment.

use std::borrow::Cow;

/// Normalization options (a mirror of the configuration struct; the caller converts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Remove `.` and `..` segments (RFC 3986 section 5.2.4), including percent-encoded ones.
    pub remove_dot_segments: bool,
    /// Decode percent-escapes of unreserved characters (`%41` → `A`); other escapes are kept
    /// with their hex digits upper-cased (`%2f` → `%2F`) either way.
    pub decode_unreserved: bool,
    /// Collapse runs of `/` into one (`//a///b` → `/a/b`).
    pub merge_slashes: bool,
    /// What to do with `%2F` / `%5C` (escaped slash and backslash).
    pub escaped_slashes: EscapedSlashes,
}

/// Handling of escaped slashes (`%2F`) and backslashes (`%5C`), as Envoy's
/// `path_with_escaped_slashes_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapedSlashes {
    /// Keep them escaped (hex upper-cased); they are not path separators.
    Keep,
    /// Refuse the request with [`NormalizeError::EscapedSlash`].
    Reject,
    /// Decode `%2F` to `/` (a separator, then normalized like any other) and `%5C` to a
    /// literal `\`.
    Unescape,
}

/// Why a request path cannot be normalized (the request should be answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// The path does not start with `/` (e.g. `*` or an absolute URI was given).
    #[error("path must start with /")]
    NotOriginForm,
    /// A raw control character, space or DEL (bytes below 0x21 or 0x7F).
    #[error("control character or space in path")]
    ControlCharacter,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-escape")]
    InvalidEscape,
    /// A percent-encoded NUL byte (`%00`).
    #[error("percent-encoded NUL (%00) in path")]
    EncodedNul,
    /// `%2F` or `%5C` with [`EscapedSlashes::Reject`].
    #[error("escaped slash or backslash in path")]
    EscapedSlash,
}

/// Normalizes `path` (the path component only, without the query).
///
/// Returns [`Cow::Borrowed`] when nothing changes; a path without `%`, `//` and `/.` (the
/// common case) is checked in one scan without allocating.
///
/// # Errors
///
/// [`NormalizeError`] when the path is not in origin form, contains a control character,
/// space or DEL, a malformed escape or `%00`, or an escaped slash with
/// [`EscapedSlashes::Reject`].
pub fn normalize_path<'a>(path: &'a str, opts: &Options) -> Result<Cow<'a, str>, NormalizeError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(NormalizeError::NotOriginForm);
    }

    // Fast path: one scan that validates and looks for anything that could change.
    let mut has_percent = false;
    let mut has_double_slash = false;
    let mut has_slash_dot = false;
    let mut prev = 0u8;
    for &b in bytes {
        if is_forbidden(b) {
            return Err(NormalizeError::ControlCharacter);
        }
        match (prev, b) {
            (_, b'%') => has_percent = true,
            (b'/', b'/') => has_double_slash = true,
            (b'/', b'.') => has_slash_dot = true,
            _ => {}
        }
        prev = b;
    }
    // Without escapes the output can only differ by merged slashes or removed dot segments.
    if !has_percent
        && (!has_double_slash || !opts.merge_slashes)
        && (!has_slash_dot || !opts.remove_dot_segments)
    {
        return Ok(Cow::Borrowed(path));
    }

    let decoded = if has_percent {
        Cow::Owned(decode_escapes(path, opts)?)
    } else {
        Cow::Borrowed(path)
    };
    let out = normalize_segments(&decoded, opts);
    if out == path {
        Ok(Cow::Borrowed(path))
    } else {
        Ok(Cow::Owned(out))
    }
}

/// Raw bytes never allowed in a path: controls, space and DEL.
fn is_forbidden(b: u8) -> bool {
    b < 0x21 || b == 0x7f
}

/// RFC 3986 unreserved characters: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Step 1 and 2: validates every escape, decodes unreserved ones (when enabled), applies the
/// escaped-slash action and upper-cases the hex digits of every escape that stays.
fn decode_escapes(path: &str, opts: &Options) -> Result<String, NormalizeError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    // Start of the run of literal text not yet copied. Runs end at a `%`, which is ASCII, so
    // every slice below falls on a character boundary.
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            i += 1;
            continue;
        }
        out.push_str(&path[literal_start..i]);
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex_value),
            bytes.get(i + 2).copied().and_then(hex_value),
        ) else {
            return Err(NormalizeError::InvalidEscape);
        };
        let value = (hi << 4) | lo;
        match value {
            0 => return Err(NormalizeError::EncodedNul),
            b'/' | b'\\' => match opts.escaped_slashes {
                EscapedSlashes::Reject => return Err(NormalizeError::EscapedSlash),
                EscapedSlashes::Unescape => out.push(char::from(value)),
                EscapedSlashes::Keep => push_escape(&mut out, value, HEX),
            },
            v if opts.decode_unreserved && is_unreserved(v) => out.push(char::from(v)),
            v => push_escape(&mut out, v, HEX),
        }
        i += 3;
        literal_start = i;
    }
    out.push_str(&path[literal_start..]);
    Ok(out)
}

fn push_escape(out: &mut String, value: u8, hex: &[u8; 16]) {
    out.push('%');
    out.push(char::from(hex[usize::from(value >> 4)]));
    out.push(char::from(hex[usize::from(value & 0x0f)]));
}

/// The number of dots (1 or 2) when `segment` is a dot segment, spelled with plain and/or
/// percent-encoded dots (`.`, `%2E`, `.%2e`, ...).
fn dot_segment(segment: &str) -> Option<usize> {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix(b".") {
            rest = tail;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"%2E") {
            rest = &rest[3..];
        } else {
            return None;
        }
        dots += 1;
        if dots > 2 {
            return None;
        }
    }
    (dots > 0).then_some(dots)
}

/// Steps 3 and 4: merges slashes and removes dot segments, on a path that starts with `/`
/// and whose escapes are already validated.
fn normalize_segments(path: &str, opts: &Options) -> String {
    // Every segment is preceded by one `/`; the empty last segment of `/a/` is the trailing
    // slash. The output is the concatenation of `/` + segment for every kept segment.
    let body = path.strip_prefix('/').unwrap_or(path);
    let mut segments: Vec<&str> = Vec::new();
    let mut iter = body.split('/').peekable();
    while let Some(segment) = iter.next() {
        let is_last = iter.peek().is_none();
        if opts.merge_slashes && segment.is_empty() && !is_last {
            continue;
        }
        match dot_segment(segment) {
            None => segments.push(segment),
            Some(dots) if !opts.remove_dot_segments => {
                segments.push(if dots == 1 { "." } else { ".." });
            }
            Some(dots) => {
                if dots == 2 {
                    // `..` above the root stays at the root.
                    segments.pop();
                }
                if is_last {
                    // `/a/b/..` → `/a/`, `/a/.` → `/a/`.
                    segments.push("");
                }
            }
        }
    }
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len());
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Options = Options {
        remove_dot_segments: true,
        decode_unreserved: true,
        merge_slashes: true,
        escaped_slashes: EscapedSlashes::Keep,
    };
    const NONE: Options = Options {
        remove_dot_segments: false,
        decode_unreserved: false,
        merge_slashes: false,
        escaped_slashes: EscapedSlashes::Keep,
    };
    const NO_DOTS: Options = Options {
        remove_dot_segments: false,
        ..ALL
    };
    const NO_DECODE: Options = Options {
        decode_unreserved: false,
        ..ALL
    };
    const NO_MERGE: Options = Options {
        merge_slashes: false,
        ..ALL
    };
    const REJECT: Options = Options {
        escaped_slashes: EscapedSlashes::Reject,
        ..ALL
    };
    const UNESCAPE: Options = Options {
        escaped_slashes: EscapedSlashes::Unescape,
        ..ALL
    };

    use NormalizeError::*;

    #[test]
    fn table() {
        let cases: &[(&str, Options, Result<&str, NormalizeError>)] = &[
            // Plain paths.
            ("/", ALL, Ok("/")),
            ("/a/b/c", ALL, Ok("/a/b/c")),
            ("/a/b/", ALL, Ok("/a/b/")),
            ("/.well-known/x", ALL, Ok("/.well-known/x")),
            ("/a/...", ALL, Ok("/a/...")),
            ("/a/..b/.c", ALL, Ok("/a/..b/.c")),
            ("/a\\..\\b", ALL, Ok("/a\\..\\b")),
            ("/caf\u{e9}/%c3%a9", ALL, Ok("/caf\u{e9}/%C3%A9")),
            // Dot segments.
            ("/a/./b", ALL, Ok("/a/b")),
            ("/a/../b", ALL, Ok("/b")),
            ("/a/../../b", ALL, Ok("/b")),
            ("/../a", ALL, Ok("/a")),
            ("/..", ALL, Ok("/")),
            ("/.", ALL, Ok("/")),
            ("/a/b/..", ALL, Ok("/a/")),
            ("/a/b/.", ALL, Ok("/a/b/")),
            ("/a/b/../", ALL, Ok("/a/")),
            ("/a/./b/../c/./d", ALL, Ok("/a/c/d")),
            ("/a/./b", NO_DOTS, Ok("/a/./b")),
            ("/a/../../b", NO_DOTS, Ok("/a/../../b")),
            // Encoded dots.
            ("/a/%2e%2E/b", ALL, Ok("/b")),
            ("/a/%2e/b", ALL, Ok("/a/b")),
            ("/a/.%2e", ALL, Ok("/")),
            ("/a/%2e%2E/b", NO_DECODE, Ok("/b")),
            ("/a/%2e%2E/%2e", NO_DECODE, Ok("/")),
            ("/a/%2e%2E/b", NO_DOTS, Ok("/a/../b")),
            ("/a/%2e%2E/b", NONE, Ok("/a/../b")),
            ("/a/%2e%2E%2e/b", NONE, Ok("/a/%2E%2E%2E/b")),
            ("/a/%2ex", NO_DECODE, Ok("/a/%2Ex")),
            ("/a/%252e%252e/b", ALL, Ok("/a/%252e%252e/b")),
            // Merge slashes.
            ("//a//b/", ALL, Ok("/a/b/")),
            ("//", ALL, Ok("/")),
            ("/a///", ALL, Ok("/a/")),
            ("//a//b/", NO_MERGE, Ok("//a//b/")),
            ("/a//../b", NO_MERGE, Ok("/a/b")),
            ("/a/..//b", NO_MERGE, Ok("//b")),
            ("/a//..", NO_MERGE, Ok("/a/")),
            // Unreserved decoding.
            ("/%41", ALL, Ok("/A")),
            ("/%7e", ALL, Ok("/~")),
            ("/%7E%2D%5f%30z", ALL, Ok("/~-_0z")),
            ("/%41", NO_DECODE, Ok("/%41")),
            ("/%7e", NO_DECODE, Ok("/%7E")),
            ("/a%20b", ALL, Ok("/a%20b")),
            ("/%3a%3F%25", ALL, Ok("/%3A%3F%25")),
            ("/%25%32%65", ALL, Ok("/%252e")),
            // Escaped slashes.
            ("/a%2fb", ALL, Ok("/a%2Fb")),
            ("/a%2F..", ALL, Ok("/a%2F..")),
            ("/a/..%2f..%2fb", ALL, Ok("/a/..%2F..%2Fb")),
            ("/a%2fb", REJECT, Err(EscapedSlash)),
            ("/a%5cb", REJECT, Err(EscapedSlash)),
            ("/a%2fb", UNESCAPE, Ok("/a/b")),
            ("/a%2f%2F/b", UNESCAPE, Ok("/a/b")),
            ("/a/b/..%2f..%2fc", UNESCAPE, Ok("/c")),
            ("/a%5cb", ALL, Ok("/a%5Cb")),
            ("/a%5cb", UNESCAPE, Ok("/a\\b")),
            ("/a/..%5cb", UNESCAPE, Ok("/a/..\\b")),
            // Errors.
            ("*", ALL, Err(NotOriginForm)),
            ("abc", ALL, Err(NotOriginForm)),
            ("", ALL, Err(NotOriginForm)),
            ("http://h/a", NONE, Err(NotOriginForm)),
            ("/a%zz", ALL, Err(InvalidEscape)),
            ("/a%4", ALL, Err(InvalidEscape)),
            ("/a%", NONE, Err(InvalidEscape)),
            ("/a%g1", ALL, Err(InvalidEscape)),
            ("/a%00", ALL, Err(EncodedNul)),
            ("/a%00", NONE, Err(EncodedNul)),
            ("/a b", ALL, Err(ControlCharacter)),
            ("/a\tb", NONE, Err(ControlCharacter)),
            ("/a\u{7f}", ALL, Err(ControlCharacter)),
            ("/a%2f\n", REJECT, Err(ControlCharacter)),
            ("/a%0a", ALL, Ok("/a%0A")),
        ];
        assert!(cases.len() >= 30);
        for (input, opts, expected) in cases {
            let got = normalize_path(input, opts);
            let got = got.as_ref().map(AsRef::as_ref).map_err(Clone::clone);
            assert_eq!(got, *expected, "input {input:?} with {opts:?}");
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        for (input, opts) in [
            ("/", ALL),
            ("/a/b/c", ALL),
            ("/a/b/", ALL),
            ("/a-b_c~d.e", ALL),
            ("/.well-known/x", ALL),
            ("//a", NO_MERGE),
            ("/a/../b", NO_DOTS),
            ("/a%2Fb", ALL),
            ("/a%20b", NONE),
        ] {
            let got = normalize_path(input, &opts);
            assert!(
                matches!(got, Ok(Cow::Borrowed(_))),
                "{input:?} with {opts:?}: {got:?}"
            );
        }
    }

    #[test]
    fn owned_when_changed() {
        for input in ["/a/./b", "//a", "/%41", "/a%2fb"] {
            let got = normalize_path(input, &ALL);
            assert!(matches!(got, Ok(Cow::Owned(_))), "{input:?}: {got:?}");
        }
    }

    #[test]
    fn idempotent() {
        let inputs = [
            "/a/%2e%2E/b",
            "//a//b/../c/.",
            "/a%2fb%5c%7e%41",
            "/x/..%2f..%2fy",
            "/%252e%252e/",
            "/caf\u{e9}/%c3%a9",
        ];
        let all_opts = [ALL, NONE, NO_DOTS, NO_DECODE, NO_MERGE, UNESCAPE];
        for opts in all_opts {
            for input in inputs {
                let Ok(once) = normalize_path(input, &opts) else {
                    continue;
                };
                let twice = normalize_path(&once, &opts).map(Cow::into_owned);
                assert_eq!(twice.as_deref(), Ok(once.as_ref()), "{input:?} {opts:?}");
            }
        }
    }

    #[test]
    fn no_dot_segment_survives_encoded() {
        for opts in [ALL, NONE, NO_DOTS, NO_DECODE, NO_MERGE, UNESCAPE] {
            for input in ["/a/%2e%2e/b", "/a/.%2E/b", "/a/%2E./b", "/a/%2e/b"] {
                let Ok(out) = normalize_path(input, &opts) else {
                    panic!("{input:?} rejected");
                };
                assert!(
                    !out.to_ascii_uppercase().contains("%2E"),
                    "{input:?} with {opts:?} gave {out:?}"
                );
            }
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(NotOriginForm.to_string(), "path must start with /");
        assert_eq!(
            EscapedSlash.to_string(),
            "escaped slash or backslash in path"
        );
        assert_eq!(InvalidEscape.to_string(), "malformed percent-escape");
    }
}
