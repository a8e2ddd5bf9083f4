//! How long certificates live: a default for requests that do not say, and
//! a cap for those that ask for more.

use std::time::Duration;

/// Istio's default workload certificate lifetime.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Istio's default cap (`MAX_WORKLOAD_CERT_TTL`, 90 days).
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Validity of a root generated on first start (Istio: 10 years).
pub const ROOT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The most a leaf's not-before is moved into the past, so a peer whose
/// clock is a little behind still accepts a fresh certificate.
pub const MAX_BACKDATE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    pub default: Duration,
    pub max: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            default: DEFAULT_TTL,
            max: DEFAULT_MAX_TTL,
        }
    }
}

impl Lifetimes {
    /// The lifetime to issue for a request of `requested` (zero: the default),
    /// capped at `max`. A default above the cap is capped too.
    pub fn choose(&self, requested: Duration) -> Duration {
        let wanted = if requested.is_zero() {
            self.default
        } else {
            requested
        };
        wanted.min(self.max)
    }

    /// How far before issuance not-before lies: a tenth of the lifetime, at
    /// most [`MAX_BACKDATE`], so short-lived test certificates are not
    /// half-expired when they arrive.
    pub fn backdate(lifetime: Duration) -> Duration {
        (lifetime / 10).min(MAX_BACKDATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_get_the_default_or_at_most_the_cap() {
        let l = Lifetimes {
            default: Duration::from_secs(60),
            max: Duration::from_secs(600),
        };
        assert_eq!(l.choose(Duration::ZERO), Duration::from_secs(60));
        assert_eq!(l.choose(Duration::from_secs(20)), Duration::from_secs(20));
        assert_eq!(
            l.choose(Duration::from_secs(3600)),
            Duration::from_secs(600)
        );
        assert_eq!(
            Lifetimes::backdate(Duration::from_secs(20)),
            Duration::from_secs(2)
        );
        assert_eq!(Lifetimes::backdate(DEFAULT_TTL), MAX_BACKDATE);
    }
}
