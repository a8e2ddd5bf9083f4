//! The service graph's pure parts: layout, health colours, labels and the
//! stable test ids of nodes and edges. The SVG itself is in
//! `components::graph_view`.

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

/// `12.3 rps · 0.0% err`: an edge label's first line.
pub fn edge_label(rps: f64, error_rate: f64) -> String {
    format!("{} rps · {:.1}% err", format_rps(rps), error_rate * 100.0)
}

/// `p99 12ms · mTLS`: the second line, empty when nothing is known.
pub fn edge_detail(p99_ms: Option<f64>, mtls: bool) -> String {
    let mut parts = Vec::new();
    if let Some(p99) = p99_ms.filter(|p| p.is_finite() && *p > 0.0) {
        parts.push(format!("p99 {}", format_ms(p99)));
    }
    if mtls {
        parts.push("mTLS".to_string());
    }
    parts.join(" · ")
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
    fn labels_read_like_kiali() {
        assert_eq!(edge_label(12.3, 0.0), "12.3 rps · 0.0% err");
        assert_eq!(edge_label(1.5, 0.05), "1.50 rps · 5.0% err");
        assert_eq!(edge_detail(Some(250.0), true), "p99 250ms · mTLS");
        assert_eq!(edge_detail(None, false), "");
    }
}
