//! Istio durations: the Go `time.ParseDuration` syntax Istio accepts in YAML
//! (`1.5s`, `100ms`, `1m30s`, `1h`), with protobuf's rule that a duration is
//! never negative.

use std::time::Duration;

/// Why a duration string is not one Istio accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is empty; write a number with a unit, e.g. `1.5s` or `100ms`")]
    Empty(String),
    #[error("`{0}` is negative; durations must be zero or more")]
    Negative(String),
    #[error(
        "`{0}` is not a duration; write numbers with units ns, us, ms, s, m or h, e.g. `1.5s`, `100ms`, `1m30s`"
    )]
    Syntax(String),
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses an Istio duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty(text.to_string()));
    }
    let (negative, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::Syntax(text.to_string()))?;
        let number = &rest[..number_end];
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(DurationError::Syntax(text.to_string())),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(DurationError::Syntax(text.to_string()));
        }
        let overflow = || DurationError::Overflow(text.to_string());
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut part = whole.checked_mul(unit_nanos).ok_or_else(overflow)?;
        // Fractions beyond nanosecond precision are dropped, as Go does.
        let mut scale = unit_nanos;
        for digit in fraction.bytes().take(30) {
            scale /= 10;
            part += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(part).ok_or_else(overflow)?;
    }
    if negative && total_nanos > 0 {
        return Err(DurationError::Negative(text.to_string()));
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(text.to_string()))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// Milliseconds, rounded down, as `loupe route` reports timeouts.
pub fn parse_millis(text: &str) -> Result<u64, DurationError> {
    let d = parse_duration(text)?;
    u64::try_from(d.as_millis()).map_err(|_| DurationError::Overflow(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn istio_examples_parse() {
        let cases = [
            ("1.5s", 1_500),
            ("100ms", 100),
            ("1m", 60_000),
            ("1h", 3_600_000),
            ("1m30s", 90_000),
            ("0", 0),
            ("0s", 0),
            (".5s", 500),
            ("2s", 2_000),
            ("1500us", 1),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_millis(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in [
            "", "10", "1.5", "s", "1x", "1.2.3s", "-1s", "1 s", "abc", "1sm",
        ] {
            assert!(parse_duration(text).is_err(), "{text} should fail");
        }
    }
}
