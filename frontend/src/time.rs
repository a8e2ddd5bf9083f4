//! Span and trace timestamps as the API sends them — RFC 3339 text with up
//! to nanoseconds, or a Unix number in s/ms/µs/ns — turned into
//! milliseconds since the epoch (f64 keeps µs precision for today's dates,
//! enough to place spans on a timeline).

use serde_json::Value;

pub fn epoch_ms(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().map(number_to_ms),
        Value::String(s) => {
            rfc3339_ms(s).or_else(|| s.trim().parse::<f64>().ok().map(number_to_ms))
        }
        _ => None,
    }
}

/// Guesses the unit of a Unix timestamp by its size.
fn number_to_ms(n: f64) -> f64 {
    if n > 1e17 {
        n / 1e6
    } else if n > 1e14 {
        n / 1e3
    } else if n > 1e11 {
        n
    } else {
        n * 1e3
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; a space may replace the `T`.
pub fn rfc3339_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        let frac: f64 = format!("0.{}", &r[..digits]).parse().ok()?;
        frac_ms = frac * 1000.0;
        rest = &r[digits..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(rest.len() - 2..)?.parse().ok()?;
            sign * (hh * 60 + mm)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs as f64 * 1000.0 + frac_ms)
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `HH:MM:SS.mmm` in UTC, for tables.
pub fn clock(ms: f64) -> String {
    let total = (ms / 1000.0).floor() as i64;
    let millis = (ms - total as f64 * 1000.0).round() as i64;
    let day_secs = total.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        millis.min(999)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_nanos_and_offsets() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000.0));
        let a = rfc3339_ms("2026-11-25T13:10:00.123456789Z").unwrap();
        let b = rfc3339_ms("2026-11-25T14:10:00.123456789+01:00").unwrap();
        assert!((a - b).abs() < 1e-6);
        assert!((a - 1_795_612_200_123.456_8).abs() < 0.01, "{a}");
        assert_eq!(rfc3339_ms("not a time"), None);
    }

    #[test]
    fn guesses_number_units() {
        let ms = 1_795_612_200_123.0;
        assert_eq!(epoch_ms(&Value::from(ms)), Some(ms));
        assert_eq!(
            epoch_ms(&Value::from(1_795_612_200_123_000_000u64)),
            Some(ms)
        );
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(
            clock(rfc3339_ms("2026-11-25T13:10:05.042Z").unwrap()),
            "13:10:05.042"
        );
    }
}
