//! Parsing of the query parameters the API shares: time windows (`30s`,
//! `5m`, `1h`), timestamps, bounded integers. Each error names the parameter
//! and the value, and says what would have been accepted.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// The longest graph window: rollups older than this are retention's business.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// `30s`, `5m`, `1h`, `1d` or a bare number of seconds; between 1s and 7d.
pub fn window(name: &str, value: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{name}={value:?} is not a window: use a number with s, m, h or d (e.g. 30s, 5m, 1h) between 1s and 7d"
        ))
    };
    let v = value.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(scale).ok_or_else(bad)?;
    let d = Duration::from_secs(secs);
    if d.is_zero() || d > MAX_WINDOW {
        return Err(bad());
    }
    Ok(d)
}

/// RFC 3339 (`2026-11-25T13:00:00Z`) or Unix milliseconds.
pub fn timestamp(name: &str, value: &str) -> Result<DateTime<Utc>, ApiError> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    v.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name}={value:?} is not a time: use RFC 3339 (2026-11-25T13:00:00Z) or Unix milliseconds"
            ))
        })
}

/// A whole number in `min..=max`.
pub fn bounded(name: &str, value: &str, min: u64, max: u64) -> Result<u64, ApiError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name}={value:?} must be a whole number from {min} to {max}"
        ))),
    }
}

/// A non-negative number of milliseconds (fractions allowed).
pub fn millis(name: &str, value: &str) -> Result<f64, ApiError> {
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name}={value:?} must be a non-negative number of milliseconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units() {
        assert_eq!(window("w", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(window("w", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(window("w", "1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(window("w", "90").unwrap(), Duration::from_secs(90));
        for bad in ["", "0s", "abc", "5x", "-5s", "8d", "99999999999999999999d"] {
            let e = window("window", bad).unwrap_err().to_string();
            assert!(e.contains("window="), "{bad}: {e}");
        }
    }

    #[test]
    fn timestamps_accept_rfc3339_and_millis() {
        let t = timestamp("start", "2026-11-25T13:00:00Z").unwrap();
        assert_eq!(
            timestamp("start", &t.timestamp_millis().to_string()).unwrap(),
            t
        );
        assert!(timestamp("start", "yesterday").is_err());
    }

    #[test]
    fn bounded_rejects_outside() {
        assert_eq!(bounded("limit", "20", 1, 1000).unwrap(), 20);
        assert!(bounded("limit", "0", 1, 1000).is_err());
        assert!(bounded("limit", "x", 1, 1000).is_err());
    }
}
