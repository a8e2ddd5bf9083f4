//! Health colours. The thresholds are `loupe_api::health`'s — the same the
//! server judges nodes by (Kiali's defaults) — so the browser only adds
//! `idle`, for a node or edge without traffic in the window.

use loupe_api::graph::{Edge, Node};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Degraded,
    Failure,
    Idle,
}

impl Health {
    fn judged(h: loupe_api::health::Health) -> Health {
        match h {
            loupe_api::health::Health::Healthy => Health::Healthy,
            loupe_api::health::Health::Degraded => Health::Degraded,
            loupe_api::health::Health::Failure => Health::Failure,
        }
    }

    /// An edge by its responses per code.
    pub fn of_edge(e: &Edge) -> Health {
        if e.rps <= 0.0 {
            Health::Idle
        } else {
            Health::judged(e.health())
        }
    }

    /// A node as the server judged it, idle without traffic either way.
    pub fn of_node(n: &Node) -> Health {
        if n.rps_in <= 0.0 && n.rps_out <= 0.0 {
            Health::Idle
        } else {
            Health::judged(n.health)
        }
    }

    /// CSS class suffix, also the arrowhead marker's name.
    pub fn class(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failure => "failure",
            Health::Idle => "idle",
        }
    }

    pub const ALL: [Health; 4] = [
        Health::Healthy,
        Health::Degraded,
        Health::Failure,
        Health::Idle,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(rps: f64, codes: &[(&str, u64)]) -> Edge {
        Edge {
            rps,
            responses: codes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            ..Edge::default()
        }
    }

    #[test]
    fn edges_use_the_shared_thresholds() {
        assert_eq!(
            Health::of_edge(&edge(1.0, &[("200", 100)])),
            Health::Healthy
        );
        assert_eq!(
            Health::of_edge(&edge(1.0, &[("200", 999), ("503", 1)])),
            Health::Degraded
        );
        assert_eq!(
            Health::of_edge(&edge(1.0, &[("200", 90), ("500", 10)])),
            Health::Failure
        );
        // 5 % 404s are fine; 10 % are degraded.
        assert_eq!(
            Health::of_edge(&edge(1.0, &[("200", 95), ("404", 5)])),
            Health::Healthy
        );
        assert_eq!(
            Health::of_edge(&edge(1.0, &[("200", 90), ("404", 10)])),
            Health::Degraded
        );
        assert_eq!(Health::of_edge(&edge(0.0, &[("500", 10)])), Health::Idle);
    }
}
