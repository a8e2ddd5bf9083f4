//! Request health, defined once for the server's graph and the browser's
//! colours, with Kiali's default tolerances (`healthConfig.rate`):
//!
//! | errors              | degraded | failure |
//! |---------------------|----------|---------|
//! | HTTP 5xx            | any      | ≥ 10 %  |
//! | HTTP 4xx            | ≥ 10 %   | ≥ 20 %  |
//! | gRPC status 1–16    | any      | ≥ 10 %  |
//!
//! Each class is judged on its share of all requests, and the worst verdict
//! wins. No traffic is healthy here; the browser shows it as idle.

use serde::{Deserialize, Serialize};

/// A node's or an edge's colour.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Healthy,
    Degraded,
    Failure,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failure => "failure",
        }
    }
}

/// The errors a tolerance is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Http5xx,
    Http4xx,
    /// A gRPC status other than OK (1–16).
    Grpc,
}

/// When a share of errors of one class is degraded, and when failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub class: ErrorClass,
    /// Degraded at or above this share (0..1); 0 means any error.
    pub degraded: f64,
    /// Failure at or above this share (0..1).
    pub failure: f64,
}

impl Tolerance {
    pub fn judge(&self, share: f64) -> Health {
        if share >= self.failure {
            Health::Failure
        } else if share > 0.0 && share >= self.degraded {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
}

/// Kiali's defaults.
pub const TOLERANCES: [Tolerance; 3] = [
    Tolerance {
        class: ErrorClass::Http5xx,
        degraded: 0.0,
        failure: 0.10,
    },
    Tolerance {
        class: ErrorClass::Http4xx,
        degraded: 0.10,
        failure: 0.20,
    },
    Tolerance {
        class: ErrorClass::Grpc,
        degraded: 0.0,
        failure: 0.10,
    },
];

/// Requests and their errors by class, summed over whatever is judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub requests: u64,
    pub http_5xx: u64,
    pub http_4xx: u64,
    pub grpc_errors: u64,
}

impl RequestCounts {
    /// Counts per HTTP response code (`"200"`, `"503"`, …), as the graph's
    /// edges carry them in `responses`.
    pub fn from_http_codes<'a>(codes: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let mut counts = RequestCounts::default();
        for (code, n) in codes {
            counts.add_http(code, n);
        }
        counts
    }

    pub fn add_http(&mut self, code: &str, n: u64) {
        self.requests += n;
        match code.as_bytes().first() {
            Some(b'5') => self.http_5xx += n,
            Some(b'4') => self.http_4xx += n,
            _ => {}
        }
    }

    /// A gRPC request by its `grpc-status` (`"0"` is OK).
    pub fn add_grpc(&mut self, status: &str, n: u64) {
        self.requests += n;
        if matches!(status.trim().parse::<u8>(), Ok(1..=16)) {
            self.grpc_errors += n;
        }
    }

    pub fn merge(&mut self, other: &RequestCounts) {
        self.requests += other.requests;
        self.http_5xx += other.http_5xx;
        self.http_4xx += other.http_4xx;
        self.grpc_errors += other.grpc_errors;
    }

    /// The share (0..1) of all requests in `class`; 0 without requests.
    pub fn share(&self, class: ErrorClass) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        let errors = match class {
            ErrorClass::Http5xx => self.http_5xx,
            ErrorClass::Http4xx => self.http_4xx,
            ErrorClass::Grpc => self.grpc_errors,
        };
        errors as f64 / self.requests as f64
    }

    /// The worst verdict of [`TOLERANCES`].
    pub fn health(&self) -> Health {
        TOLERANCES
            .iter()
            .map(|t| t.judge(self.share(t.class)))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(ok: u64, code: &str, errors: u64) -> Health {
        RequestCounts::from_http_codes([("200", ok), (code, errors)]).health()
    }

    #[test]
    fn any_5xx_is_degraded_and_ten_percent_is_failure() {
        assert_eq!(http(100, "500", 0), Health::Healthy);
        assert_eq!(http(9999, "503", 1), Health::Degraded);
        // 9.9 % and exactly 10 %.
        assert_eq!(http(901, "500", 99), Health::Degraded);
        assert_eq!(http(90, "500", 10), Health::Failure);
    }

    #[test]
    fn four_xx_is_degraded_at_ten_and_failure_at_twenty_percent() {
        assert_eq!(http(999, "404", 1), Health::Healthy);
        assert_eq!(http(901, "404", 99), Health::Healthy);
        assert_eq!(http(90, "403", 10), Health::Degraded);
        assert_eq!(http(801, "429", 199), Health::Degraded);
        assert_eq!(http(80, "404", 20), Health::Failure);
    }

    #[test]
    fn grpc_errors_count_like_5xx() {
        let grpc = |ok: u64, status: &str, errors: u64| {
            let mut c = RequestCounts::default();
            c.add_grpc("0", ok);
            c.add_grpc(status, errors);
            c.health()
        };
        assert_eq!(grpc(100, "14", 0), Health::Healthy);
        assert_eq!(grpc(999, "14", 1), Health::Degraded);
        assert_eq!(grpc(90, "2", 10), Health::Failure);
        assert_eq!(grpc(90, "17", 10), Health::Healthy, "not a gRPC status");
    }

    #[test]
    fn the_worst_class_wins_over_all_requests() {
        // 5 % 5xx (degraded) and 20 % 4xx (failure).
        let c = RequestCounts::from_http_codes([("200", 75), ("500", 5), ("404", 20)]);
        assert_eq!(c.health(), Health::Failure);
        assert_eq!(c.share(ErrorClass::Http5xx), 0.05);
        assert_eq!(RequestCounts::default().health(), Health::Healthy);
    }
}
