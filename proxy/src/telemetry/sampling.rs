//! Which requests produce spans: the share of new traces sampled and
//! whether spans are reported at all, per side (client spans are the
//! outbound side's, server spans the inbound's), compiled once per config
//! from the mesh default and the Telemetry resources that select this
//! workload (`loupe_model::telemetry::resolve_tracing`).
//!
//! As in Envoy, the decision is taken once, where a trace starts; a request
//! that carries a trace context keeps its caller's decision (W3C `sampled`
//! flag, B3 `x-b3-sampled`), so a trace is whole or absent.

use loupe_model::Resource;
use loupe_model::telemetry::{TraceDirection, resolve_tracing};
use rand::Rng;

use crate::identity::Workload;

/// 100 %, in basis points.
pub const ALL: u32 = 10_000;

/// The span policy of one side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanPolicy {
    /// Share of new traces sampled, in basis points (10000 = 100 %).
    pub basis_points: u32,
    /// `disableSpanReporting` not set: sampled spans are exported.
    pub report: bool,
}

impl Default for SpanPolicy {
    fn default() -> Self {
        SpanPolicy {
            basis_points: ALL,
            report: true,
        }
    }
}

impl SpanPolicy {
    /// Rolls for a trace that starts here.
    pub fn sample_new_trace(&self) -> bool {
        match self.basis_points {
            0 => false,
            b if b >= ALL => true,
            b => rand::rng().random_range(0..ALL) < b,
        }
    }
}

/// This workload's span policies, both sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tracing {
    pub client: SpanPolicy,
    pub server: SpanPolicy,
}

impl Tracing {
    /// Resolves the Telemetry `resources` for `this` over the mesh default
    /// (`mesh_basis_points`; absent: every trace).
    pub fn resolve(
        resources: &[Resource],
        root_namespace: &str,
        this: &Workload,
        mesh_basis_points: Option<u32>,
    ) -> Tracing {
        let side = |direction| {
            let r = resolve_tracing(
                resources,
                root_namespace,
                &this.namespace,
                &this.labels,
                direction,
            );
            SpanPolicy {
                basis_points: r
                    .random_sampling_percentage
                    .map(|p| (p * 100.0).round() as u32)
                    .or(mesh_basis_points)
                    .unwrap_or(ALL)
                    .min(ALL),
                report: !r.disable_span_reporting,
            }
        };
        Tracing {
            client: side(TraceDirection::Client),
            server: side(TraceDirection::Server),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roll_keeps_close_to_the_share() {
        let policy = SpanPolicy {
            basis_points: 100,
            report: true,
        };
        let sampled = (0..100_000).filter(|_| policy.sample_new_trace()).count();
        assert!((700..1300).contains(&sampled), "1 % of 100,000: {sampled}");
        let none = SpanPolicy {
            basis_points: 0,
            report: true,
        };
        assert!(!(0..1000).any(|_| none.sample_new_trace()));
        assert!((0..1000).all(|_| SpanPolicy::default().sample_new_trace()));
    }
}
