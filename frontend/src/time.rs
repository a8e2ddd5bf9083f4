//! Span and trace timestamps (the API's `DateTime<Utc>`) as milliseconds
//! since the epoch (f64 keeps µs precision for today's dates, enough to
//! place spans on a timeline), and as a clock for tables.

use chrono::{DateTime, Utc};

pub fn epoch_ms(t: &DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1000.0
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
    fn keeps_microseconds() {
        let t: DateTime<Utc> = "2026-11-25T13:10:00.123456789Z".parse().unwrap();
        assert!((epoch_ms(&t) - 1_795_612_200_123.456).abs() < 1e-3);
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        let t: DateTime<Utc> = "2026-11-25T13:10:05.042Z".parse().unwrap();
        assert_eq!(clock(epoch_ms(&t)), "13:10:05.042");
    }
}
