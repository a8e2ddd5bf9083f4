//! Rows in PostgreSQL's `COPY ... FROM STDIN` text format: fields separated
//! by tabs, rows ended by newlines, `\N` for NULL, and backslash, tab,
//! newline and carriage return escaped inside values.

use std::io::Write;

use chrono::{DateTime, Utc};

/// A COPY text buffer, written one field at a time.
#[derive(Default)]
pub struct CopyText {
    buf: Vec<u8>,
    first_in_row: bool,
}

impl CopyText {
    pub fn with_capacity(bytes: usize) -> Self {
        CopyText {
            buf: Vec::with_capacity(bytes),
            first_in_row: true,
        }
    }

    fn separate(&mut self) {
        if !self.first_in_row {
            self.buf.push(b'\t');
        }
        self.first_in_row = false;
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        escape_into(&mut self.buf, value);
        self
    }

    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.text(v),
            None => {
                self.separate();
                self.buf.extend_from_slice(b"\\N");
                self
            }
        }
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.separate();
        let _ = write!(self.buf, "{value}");
        self
    }

    pub fn float(&mut self, value: f64) -> &mut Self {
        self.separate();
        push_float(&mut self.buf, value);
        self
    }

    pub fn timestamp(&mut self, value: DateTime<Utc>) -> &mut Self {
        self.separate();
        let _ = write!(self.buf, "{}", value.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        self
    }

    /// A `double precision[]` in array literal syntax (`{1,2.5,Infinity}`).
    pub fn float_array(&mut self, values: &[f64]) -> &mut Self {
        self.separate();
        self.buf.push(b'{');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            push_float(&mut self.buf, *v);
        }
        self.buf.push(b'}');
        self
    }

    /// A `bigint[]` in array literal syntax.
    pub fn int_array(&mut self, values: &[i64]) -> &mut Self {
        self.separate();
        self.buf.push(b'{');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            let _ = write!(self.buf, "{v}");
        }
        self.buf.push(b'}');
        self
    }

    /// A JSON value (for a `jsonb` column), escaped like any text.
    pub fn json(&mut self, value: &serde_json::Value) -> &mut Self {
        self.separate();
        let json = value.to_string();
        escape_into(&mut self.buf, &json);
        self
    }

    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.first_in_row = true;
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

fn push_float(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v == f64::INFINITY {
        buf.extend_from_slice(b"Infinity");
    } else if v == f64::NEG_INFINITY {
        buf.extend_from_slice(b"-Infinity");
    } else {
        let _ = write!(buf, "{v}");
    }
}

fn escape_into(buf: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            // NUL cannot be stored in Postgres text at all.
            0 => {}
            _ => buf.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators_and_writes_null_arrays_and_timestamps() {
        let mut copy = CopyText::with_capacity(64);
        let ts = DateTime::from_timestamp_nanos(1_700_000_000_123_456_789);
        copy.text("a\tb\\c\nd")
            .opt_text(None)
            .int(-5)
            .timestamp(ts)
            .float_array(&[0.5, f64::INFINITY])
            .int_array(&[1, 2]);
        copy.end_row();
        assert_eq!(
            std::str::from_utf8(copy.as_bytes()).unwrap(),
            "a\\tb\\\\c\\nd\t\\N\t-5\t2023-11-14 22:13:20.123456+00\t{0.5,Infinity}\t{1,2}\n"
        );
    }
}
