//! What one tenant's queries may cost the operator and the Prometheus it shares: set by the
//! operator's admin, the same for every policy.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest response body read from Prometheus (a grouped query gets this per namespace
    /// it covers).
    pub max_response_bytes: usize,
    /// Most series one namespace's answer may hold.
    pub max_series: usize,
    /// Queries of one namespace in flight to one Prometheus at a time.
    pub namespace_share: usize,
    /// Longest a raw query may look back (range selectors, subqueries and offsets).
    pub max_lookback: Duration,
    /// Finest step a raw query's subquery may take.
    pub min_subquery_step: Duration,
    /// Most evaluation steps a raw query's subqueries may take, nested ones multiplied.
    pub max_subquery_points: u64,
}

/// How many of a namespace's queries may wait for its share, per query in flight: beyond
/// it, asks are refused at once rather than queued without bound.
pub const WAITING_PER_SLOT: usize = 4;
/// How long a namespace's share must have had no free slot before waiting asks are refused:
/// a burst of fast queries (many policies of one namespace due at once) waits its turn; a
/// backlog that lasts is a slow tenant's.
pub const BACKLOG_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_response_bytes: 4 << 20,
            max_series: 1000,
            namespace_share: 2,
            max_lookback: Duration::from_secs(14 * 86_400),
            min_subquery_step: Duration::from_secs(1),
            max_subquery_points: 20_000,
        }
    }
}

/// A byte count as an admin would write it: 4MiB, 512KiB, 900B.
pub fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}

/// Parses a byte count with an optional B, KiB, MiB or GiB suffix.
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?}: expected a byte count such as 4MiB"))?;
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        other => return Err(format!("{other:?}: expected B, KiB, MiB or GiB")),
    };
    n.checked_mul(1 << shift)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?}: expected a positive byte count"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_and_print_as_admins_write_them() {
        assert_eq!(parse_bytes("4MiB"), Ok(4 << 20));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("900"), Ok(900));
        assert!(parse_bytes("4MB").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("-1").is_err());
        assert_eq!(bytes(4 << 20), "4MiB");
        assert_eq!(bytes(1536), "1536B");
        assert_eq!(bytes(2048), "2KiB");
    }
}
