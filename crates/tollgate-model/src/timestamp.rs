//! Points in time written as RFC 3339 text (`2026-12-31T00:00:00Z`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC point in time with second precision, written as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// Now, truncated to whole seconds.
    pub fn now() -> Self {
        Self::from_unix(Self(SystemTime::now()).unix_seconds())
    }

    /// `secs` seconds after the Unix epoch (negative values clamp to the epoch).
    pub fn from_unix(secs: i64) -> Self {
        Self(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// The standard library time.
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// Parses RFC 3339 (`2026-12-31T00:00:00Z`, fractions and offsets other than `Z` refused
    /// by the underlying parser are reported).
    pub fn parse(text: &str) -> Result<Self, String> {
        humantime::parse_rfc3339_weak(text.trim())
            .map(|t| Self::from_unix(Self(t).unix_seconds()))
            .map_err(|e| {
                format!("{text:?} is not an RFC 3339 time such as 2026-12-31T00:00:00Z: {e}")
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let t = Timestamp::parse("2026-12-31T10:20:30Z").unwrap();
        assert_eq!(t.to_string(), "2026-12-31T10:20:30Z");
        assert_eq!(Timestamp::from_unix(t.unix_seconds()), t);
    }

    #[test]
    fn rejects_other_text() {
        assert!(
            Timestamp::parse("tomorrow")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
