//! A strict reader of the Prometheus text exposition format (0.0.4): one
//! sample per line, `name{label="value",…} value [timestamp]`, `#` lines
//! (`HELP`, `TYPE`, comments) skipped.
//!
//! Strict where it matters for trust: a label value is a quoted string whose
//! only escapes are `\\`, `\"` and `\n`, so a value holding `,` or `="` stays
//! one value and cannot forge other labels (splitting on commas, as
//! `prometheus-parse` does, let a `Host` header echoed into a label do that);
//! a label set naming one label twice is refused; so is anything after the
//! value and timestamp. A scrape with one bad line is refused whole, as
//! Prometheus does, and the error names the line.

use std::fmt;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Scrape {
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut samples = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_matches([' ', '\t', '\r']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = Line { rest: line }.sample().map_err(|message| ParseError {
                line: i + 1,
                message,
            })?;
            samples.push(sample);
        }
        Ok(Scrape { samples })
    }
}

/// What is left of one line to read.
struct Line<'a> {
    rest: &'a str,
}

impl<'a> Line<'a> {
    fn sample(mut self) -> Result<Sample, String> {
        let metric = self.name(true).ok_or("expected a metric name")?.to_string();
        let mut labels: Vec<(String, String)> = Vec::new();
        if self.eat('{') {
            loop {
                self.blanks();
                if self.eat('}') {
                    break;
                }
                let name = self.name(false).ok_or("expected a label name or `}`")?;
                self.blanks();
                if !self.eat('=') {
                    return Err(format!("expected `=` after label {name}"));
                }
                self.blanks();
                let value = self.quoted()?;
                if labels.iter().any(|(k, _)| k == name) {
                    return Err(format!("label {name} appears twice"));
                }
                labels.push((name.to_string(), value));
                self.blanks();
                if self.eat(',') {
                    continue;
                }
                if self.eat('}') {
                    break;
                }
                return Err("expected `,` or `}` after a label value".into());
            }
        }
        if !self.blanks() {
            return Err("expected a space before the value".into());
        }
        let value = self.word();
        let value = parse_float(value).ok_or_else(|| format!("{value:?} is not a number"))?;
        if self.blanks() && !self.rest.is_empty() {
            let ts = self.word();
            ts.parse::<i64>()
                .map_err(|_| format!("{ts:?} is not a timestamp"))?;
            self.blanks();
        }
        if !self.rest.is_empty() {
            return Err(format!("unexpected {:?} after the value", self.rest));
        }
        Ok(Sample {
            metric,
            labels,
            value,
        })
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Skips spaces and tabs; whether there were any.
    fn blanks(&mut self) -> bool {
        let before = self.rest.len();
        self.rest = self.rest.trim_start_matches([' ', '\t']);
        self.rest.len() != before
    }

    fn word(&mut self) -> &'a str {
        let end = self.rest.find([' ', '\t']).unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        word
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, and `:` too in a metric name.
    fn name(&mut self, metric: bool) -> Option<&'a str> {
        let ok = |c: char, first: bool| {
            c == '_'
                || c.is_ascii_alphabetic()
                || (!first && c.is_ascii_digit())
                || (metric && c == ':')
        };
        let end = self
            .rest
            .char_indices()
            .find(|&(i, c)| !ok(c, i == 0))
            .map_or(self.rest.len(), |(i, _)| i);
        if end == 0 {
            return None;
        }
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(name)
    }

    /// A `"…"` label value, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        if !self.eat('"') {
            return Err("expected a quoted label value".into());
        }
        let mut value = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => {
                        return Err(format!("invalid escape `\\{other}` in a label value"));
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err("unterminated label value".into())
    }
}

/// Go's `strconv.ParseFloat` as Prometheus writes values: decimals,
/// exponents, `NaN`, `+Inf`, `-Inf`.
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            && !s.is_empty() =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_labels_values_and_timestamps() {
        let scrape = Scrape::parse(
            "# HELP x help\n# TYPE x counter\n\
             x{a=\"1\",b=\"two words\",} 3 1700000000000\n\
             y 4.5e3\n\
             z{} +Inf\n\
             w{le=\"+Inf\"} NaN\n",
        )
        .unwrap();
        assert_eq!(scrape.samples.len(), 4);
        let x = &scrape.samples[0];
        assert_eq!(x.metric, "x");
        assert_eq!(x.label("b"), Some("two words"));
        assert_eq!(x.value, 3.0);
        assert_eq!(scrape.samples[1].value, 4500.0);
        assert_eq!(scrape.samples[2].value, f64::INFINITY);
        assert!(scrape.samples[3].value.is_nan());
    }

    #[test]
    fn a_value_with_commas_and_equals_signs_is_one_value() {
        // What a Host header echoed into a label could carry.
        let forged = r#"evil",reporter="source",destination_workload="admin"#;
        let escaped = forged.replace('\\', "\\\\").replace('"', "\\\"");
        let text = format!(
            "istio_requests_total{{reporter=\"destination\",request_host=\"{escaped}\"}} 1\n"
        );
        let scrape = Scrape::parse(&text).unwrap();
        let s = &scrape.samples[0];
        assert_eq!(s.labels.len(), 2);
        assert_eq!(s.label("reporter"), Some("destination"));
        assert_eq!(s.label("request_host"), Some(forged));
        assert_eq!(s.label("destination_workload"), None);
    }

    #[test]
    fn escapes_are_read_and_bad_ones_refused() {
        let s = Scrape::parse("m{a=\"x\\\\y\\\"z\\nw\"} 1\n").unwrap();
        assert_eq!(s.samples[0].label("a"), Some("x\\y\"z\nw"));
        for (text, needle) in [
            ("m{a=\"x\\qy\"} 1", "invalid escape"),
            ("m{a=\"x} 1", "unterminated"),
            ("m{a=x} 1", "quoted"),
            ("m{a=\"1\",a=\"2\"} 1", "appears twice"),
            ("m{a=\"1\"}} 1", "space before the value"),
            ("m 1 2 3", "after the value"),
            ("m one", "not a number"),
            ("m{a=\"1\" b=\"2\"} 1", "`,` or `}`"),
            ("{a=\"1\"} 1", "metric name"),
        ] {
            let err = Scrape::parse(&format!("ok 1\n{text}\n")).unwrap_err();
            assert_eq!(err.line, 2, "{text}");
            assert!(err.message.contains(needle), "{text}: {err}");
        }
    }
}
