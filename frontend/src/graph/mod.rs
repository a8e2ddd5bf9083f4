//! The service graph's pure parts: layout, health colours, labels and the
//! stable test ids of nodes and edges. The SVG itself is in
//! `components::graph_view`.

use loupe_api::graph::Edge;

pub mod find;
pub mod health;
pub mod layout;

/// A DOM-safe id fragment: every character outside `[A-Za-z0-9_]` becomes
/// `-`, so `default/reviews/v2` is `default-reviews-v2`.
pub fn sanitize_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// What edges are labelled with (Kiali's "Edge labels" menu).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EdgeLabels {
    #[default]
    RequestRate,
    ErrorRate,
    /// p95 (Kiali's default percentile), with p99 below it.
    ResponseTime,
    None,
}

impl EdgeLabels {
    pub const ALL: [EdgeLabels; 4] = [
        EdgeLabels::RequestRate,
        EdgeLabels::ErrorRate,
        EdgeLabels::ResponseTime,
        EdgeLabels::None,
    ];

    /// The URL and `<option>` value.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeLabels::RequestRate => "rps",
            EdgeLabels::ErrorRate => "errors",
            EdgeLabels::ResponseTime => "responsetime",
            EdgeLabels::None => "none",
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            EdgeLabels::RequestRate => "Request rate",
            EdgeLabels::ErrorRate => "Error %",
            EdgeLabels::ResponseTime => "Response time",
            EdgeLabels::None => "No labels",
        }
    }

    pub fn parse(s: &str) -> Option<EdgeLabels> {
        EdgeLabels::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// An edge's label: the first line and the smaller second one (either may be empty).
    pub fn text(self, e: &Edge) -> (String, String) {
        let mtls = if e.mtls > 0.0 { "mTLS" } else { "" };
        let ms = |v: f64| v.is_finite() && v > 0.0;
        match self {
            EdgeLabels::RequestRate => (format!("{} rps", format_rps(e.rps)), mtls.into()),
            EdgeLabels::ErrorRate => (format!("{:.1}% err", e.error_rate * 100.0), mtls.into()),
            EdgeLabels::ResponseTime => (
                if ms(e.p95_ms) {
                    format!("p95 {}", format_ms(e.p95_ms))
                } else {
                    String::new()
                },
                if ms(e.p99_ms) {
                    format!("p99 {}", format_ms(e.p99_ms))
                } else {
                    String::new()
                },
            ),
            EdgeLabels::None => (String::new(), String::new()),
        }
    }
}

pub fn format_rps(rps: f64) -> String {
    if rps >= 100.0 {
        format!("{rps:.0}")
    } else if rps >= 10.0 {
        format!("{rps:.1}")
    } else {
        format!("{rps:.2}")
    }
}

pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dom_safe() {
        assert_eq!(sanitize_id("default/reviews/v2"), "default-reviews-v2");
        assert_eq!(sanitize_id("default.reviews:v2"), "default-reviews-v2");
    }

    #[test]
    fn edge_labels_follow_the_mode() {
        let e = Edge {
            rps: 12.3,
            error_rate: 0.05,
            p95_ms: 250.0,
            p99_ms: 1500.0,
            mtls: 1.0,
            ..Edge::default()
        };
        let text = |m: EdgeLabels| m.text(&e);
        assert_eq!(
            text(EdgeLabels::RequestRate),
            ("12.3 rps".into(), "mTLS".into())
        );
        assert_eq!(
            text(EdgeLabels::ErrorRate),
            ("5.0% err".into(), "mTLS".into())
        );
        assert_eq!(
            text(EdgeLabels::ResponseTime),
            ("p95 250ms".into(), "p99 1.50s".into())
        );
        assert_eq!(text(EdgeLabels::None), (String::new(), String::new()));
        for m in EdgeLabels::ALL {
            assert_eq!(EdgeLabels::parse(m.as_str()), Some(m));
        }
    }
}
