//! Fields the gateway sets on a request it forwards (`X-Forwarded-*`, `Forwarded`, the request
//! id, `Host`), each replacing any field of the same name the request has.
//!
//! Inserting them into the request's `HeaderMap` cost a hash and a probe each, several per
//! request, for fields that nothing reads afterwards. The HTTP/1.1 encoder writes them instead:
//! the request's own fields of those names are skipped while the head is written, then these
//! are appended. Requests that go out another way (HTTP/2, protocol upgrades, which go through
//! hyper) get them inserted into their map, with the same result on the wire.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Most fields one request can be given.
pub const MAX_OVERRIDES: usize = 8;

/// Fields replacing the request's own of the same name. Setting a name twice keeps the last
/// value.
#[derive(Debug, Default)]
pub struct Overrides<'a> {
    fields: [Option<(&'a HeaderName, HeaderValue)>; MAX_OVERRIDES],
    len: usize,
    /// Bit `n` set: a field name of `n` bytes is among them (a quick test before comparing).
    lengths: u64,
}

/// More than [`MAX_OVERRIDES`] fields were set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more than {MAX_OVERRIDES} fields set on a forwarded request")]
pub struct TooManyOverrides;

impl<'a> Overrides<'a> {
    /// Sets `name` to `value`, replacing what the request has.
    pub fn set(
        &mut self,
        name: &'a HeaderName,
        value: HeaderValue,
    ) -> Result<(), TooManyOverrides> {
        let bit = length_bit(name);
        // Names are compared only when one of the same length is set already (the usual
        // fields all differ in length).
        if self.lengths & bit != 0
            && let Some(slot) = self.fields[..self.len]
                .iter_mut()
                .flatten()
                .find(|(n, _)| *n == name)
        {
            slot.1 = value;
            return Ok(());
        }
        let slot = self.fields.get_mut(self.len).ok_or(TooManyOverrides)?;
        *slot = Some((name, value));
        self.len += 1;
        self.lengths |= bit;
        Ok(())
    }

    /// Whether a field named `name` of the request is replaced.
    #[inline]
    pub fn replaces(&self, name: &HeaderName) -> bool {
        self.lengths & length_bit(name) != 0 && self.iter().any(|(n, _)| n == name)
    }

    /// The fields, in the order they were first set.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.fields[..self.len]
            .iter()
            .flatten()
            .map(|(n, v)| (*n, v))
    }

    /// The `Host` field, if set.
    pub fn host(&self) -> Option<&HeaderValue> {
        self.iter()
            .find(|(n, _)| *n == header::HOST)
            .map(|(_, v)| v)
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Puts the fields into `map`, for requests not written by the HTTP/1.1 encoder.
    pub fn apply_to(&self, map: &mut HeaderMap) {
        for (name, value) in self.iter() {
            map.insert(name.clone(), value.clone());
        }
    }
}

fn length_bit(name: &HeaderName) -> u64 {
    1u64.checked_shl(name.as_str().len() as u32)
        .unwrap_or(1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_replace_by_name_and_the_last_value_wins() {
        static XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
        static LONG: HeaderName = HeaderName::from_static(
            "x-a-field-name-longer-than-sixty-four-bytes-which-shares-the-last-bit-with-others",
        );
        let mut o = Overrides::default();
        o.set(&XFF, HeaderValue::from_static("1.2.3.4")).unwrap();
        o.set(&header::HOST, HeaderValue::from_static("a.test"))
            .unwrap();
        o.set(&XFF, HeaderValue::from_static("5.6.7.8")).unwrap();
        o.set(&LONG, HeaderValue::from_static("x")).unwrap();
        assert!(o.replaces(&XFF));
        assert!(o.replaces(&header::HOST));
        assert!(o.replaces(&LONG));
        assert!(!o.replaces(&HeaderName::from_static("x-forwarded-foo")));
        assert!(!o.replaces(&header::ACCEPT));
        assert_eq!(o.host().unwrap(), "a.test");
        let got: Vec<_> = o
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(got[0], ("x-forwarded-for", "5.6.7.8"));
        assert_eq!(got.len(), 3);

        let mut map = HeaderMap::new();
        map.append(&XFF, HeaderValue::from_static("evil"));
        map.append(&XFF, HeaderValue::from_static("evil2"));
        o.apply_to(&mut map);
        assert_eq!(map.get_all(&XFF).iter().count(), 1);
        assert_eq!(map[&XFF], "5.6.7.8");

        for _ in 3..MAX_OVERRIDES {
            o.set(&header::ACCEPT, HeaderValue::from_static("*/*"))
                .unwrap();
        }
        let names: Vec<HeaderName> = (0..MAX_OVERRIDES)
            .map(|i| HeaderName::try_from(format!("x-f{i}")).unwrap())
            .collect();
        let mut full = Overrides::default();
        for n in &names {
            full.set(n, HeaderValue::from_static("1")).unwrap();
        }
        assert_eq!(
            full.set(&header::ACCEPT, HeaderValue::from_static("1")),
            Err(TooManyOverrides)
        );
    }
}
