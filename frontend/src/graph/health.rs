//! Health colours with Kiali's default request-health thresholds: an error
//! rate of 0.1 % or more is degraded, 20 % or more is failure; no traffic is
//! idle. `error_rate` is a fraction of requests (0.0–1.0), as the graph API
//! sends it.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Degraded,
    Failure,
    Idle,
}

const DEGRADED: f64 = 0.001;
const FAILURE: f64 = 0.20;

impl Health {
    pub fn of(rps: f64, error_rate: f64) -> Health {
        if rps <= 0.0 {
            Health::Idle
        } else if error_rate >= FAILURE {
            Health::Failure
        } else if error_rate >= DEGRADED {
            Health::Degraded
        } else {
            Health::Healthy
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

    /// The server's spelling (`healthy`, `degraded`, `failure`, `idle`).
    pub fn parse(s: &str) -> Option<Health> {
        Health::ALL.into_iter().find(|h| h.class() == s)
    }

    pub const ALL: [Health; 4] = [
        Health::Healthy,
        Health::Degraded,
        Health::Failure,
        Health::Idle,
    ];
}

/// A node's health from the traffic it receives: the request-weighted error
/// rate of its incoming edges.
pub fn node_health(incoming: impl Iterator<Item = (f64, f64)>) -> Health {
    let (mut rps, mut errors) = (0.0, 0.0);
    for (r, e) in incoming {
        rps += r;
        errors += r * e;
    }
    if rps <= 0.0 {
        Health::Idle
    } else {
        Health::of(rps, errors / rps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_kiali() {
        assert_eq!(Health::of(1.0, 0.0), Health::Healthy);
        assert_eq!(Health::of(1.0, 0.01), Health::Degraded);
        assert_eq!(Health::of(1.0, 0.5), Health::Failure);
        assert_eq!(Health::of(0.0, 0.5), Health::Idle);
    }

    #[test]
    fn node_health_weights_by_rate() {
        // 10 rps clean and 0.1 rps all failing: 1 % errors overall, degraded.
        assert_eq!(
            node_health([(10.0, 0.0), (0.1, 1.0)].into_iter()),
            Health::Degraded
        );
        assert_eq!(node_health(std::iter::empty()), Health::Idle);
    }
}
