//! Mesh-wide settings pushed with every snapshot (Istio's MeshConfig, the
//! part proxies need).

use loupe_push::MeshSettings;

/// Istio's root namespace: policies there apply mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// Istio's default share of new traces sampled, in percent
/// (`meshConfig.defaultConfig.tracing.sampling`; its demo profile sets 100).
pub const DEFAULT_TRACE_SAMPLING: f64 = 1.0;

/// The settings for `trust_domain`, sampling `trace_sampling` percent of new
/// traces (clamped to 0–100, at Istio's precision of 0.01 %).
pub fn settings(trust_domain: &str, trace_sampling: f64) -> MeshSettings {
    MeshSettings {
        trust_domain: trust_domain.to_string(),
        root_namespace: ROOT_NAMESPACE.to_string(),
        h2_upgrade: true,
        trace_sampling_basis_points: Some(basis_points(trace_sampling)),
    }
}

/// A percentage as basis points (100 % = 10000).
pub fn basis_points(percent: f64) -> u32 {
    if percent.is_nan() {
        return 0;
    }
    (percent.clamp(0.0, 100.0) * 100.0).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_basis_points_at_istios_precision() {
        assert_eq!(basis_points(1.0), 100);
        assert_eq!(basis_points(0.01), 1);
        assert_eq!(basis_points(100.0), 10_000);
        assert_eq!(basis_points(250.0), 10_000);
        assert_eq!(basis_points(-3.0), 0);
        assert_eq!(basis_points(f64::NAN), 0);
    }
}
