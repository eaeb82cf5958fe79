//! Prometheus-style durations (`300ms`, `15s`, `1m30s`), the form users already write in PromQL.

use std::{fmt, str::FromStr, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration written like Prometheus writes them: `250ms`, `15s`, `5m`, `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PromDuration(Duration);

impl PromDuration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }
    pub fn as_duration(self) -> Duration {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a duration; expected a number with a unit ms, s, m or h, e.g. \"300ms\" or \"1m30s\""
)]
pub struct ParseDurationError(pub String);

impl FromStr for PromDuration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDurationError(s.to_string());
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(err());
        }
        let mut total_ms: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
            if digits == 0 {
                return Err(err());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let (unit_ms, len) = if rest.starts_with("ms") {
                (1, 2)
            } else if rest.starts_with('s') {
                (1_000, 1)
            } else if rest.starts_with('m') {
                (60_000, 1)
            } else if rest.starts_with('h') {
                (3_600_000, 1)
            } else {
                return Err(err());
            };
            rest = &rest[len..];
            total_ms = n
                .checked_mul(unit_ms)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(err)?;
        }
        Ok(Self(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return write!(f, "0s");
        }
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for PromDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PromDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]{1,9}(ms|s|m|h))+$",
            "maxLength": 32,
            "description": "A duration such as 300ms, 15s, 5m or 1h30m."
        })
    }
    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!("300ms".parse(), Ok(PromDuration::from_millis(300)));
        assert_eq!("15s".parse(), Ok(PromDuration::from_secs(15)));
        assert_eq!("1m30s".parse(), Ok(PromDuration::from_secs(90)));
        assert_eq!("2h".parse(), Ok(PromDuration::from_secs(7200)));
    }

    #[test]
    fn rejects_garbage_with_the_value_in_the_message() {
        for bad in ["", "15", "s", "1.5s", "-1s", "10x", "1m 30s"] {
            let e = bad.parse::<PromDuration>().unwrap_err();
            assert!(
                e.to_string().contains("expected a number with a unit"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn displays_round_trip() {
        for s in ["300ms", "15s", "1m30s", "1h", "0s", "1h1m1s1ms"] {
            let d: PromDuration = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
    }
}
