//! Which tracing settings apply to a workload, as Istio merges Telemetry
//! resources: the mesh level (root namespace, no selector), then the
//! namespace level (the workload's namespace, no selector), then the
//! workload level (its namespace, a non-empty `selector` matching its
//! labels). Each level overrides only the fields it sets; within one
//! resource, the `tracing` entries whose `match.mode` covers the direction
//! apply in order. When several resources compete at one level Istio takes
//! the oldest; Loupe has no creation times and takes the first by name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Telemetry, WorkloadMode};
use crate::resource::Resource;

/// Which spans: the outbound side's (`CLIENT`) or the inbound side's (`SERVER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceDirection {
    Client,
    Server,
}

impl TraceDirection {
    fn covered_by(self, mode: WorkloadMode) -> bool {
        matches!(
            (self, mode),
            (_, WorkloadMode::ClientAndServer)
                | (TraceDirection::Client, WorkloadMode::Client)
                | (TraceDirection::Server, WorkloadMode::Server)
        )
    }
}

/// The merged tracing settings for one workload and direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracingResolution {
    /// Percentage of new traces sampled; `None`: the mesh default.
    pub random_sampling_percentage: Option<f64>,
    /// Spans are not reported (the context still propagates).
    pub disable_span_reporting: bool,
    /// The resources that set something, mesh level first (`namespace/name`).
    pub policies: Vec<String>,
}

/// The tracing settings for the workload (`namespace`, `labels`) in `direction`.
pub fn resolve_tracing(
    resources: &[Resource],
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    direction: TraceDirection,
) -> TracingResolution {
    let mut all: Vec<&Telemetry> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Telemetry(t) => Some(t),
            _ => None,
        })
        .collect();
    all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let selects_workloads = |t: &Telemetry| {
        t.spec
            .selector
            .as_ref()
            .is_some_and(|s| !s.match_labels.is_empty())
    };
    let mesh = all
        .iter()
        .find(|t| t.metadata.namespace() == root_namespace && !selects_workloads(t));
    let namespace_wide = all.iter().find(|t| {
        namespace != root_namespace && t.metadata.namespace() == namespace && !selects_workloads(t)
    });
    let workload = all.iter().find(|t| {
        t.metadata.namespace() == namespace
            && t.spec
                .selector
                .as_ref()
                .is_some_and(|s| !s.match_labels.is_empty() && s.matches(labels))
    });
    let mut out = TracingResolution::default();
    for telemetry in [mesh, namespace_wide, workload].into_iter().flatten() {
        let mut used = false;
        for tracing in &telemetry.spec.tracing {
            if !direction.covered_by(tracing.mode()) {
                continue;
            }
            if let Some(p) = tracing.random_sampling_percentage {
                out.random_sampling_percentage = Some(p.clamp(0.0, 100.0));
                used = true;
            }
            if let Some(d) = tracing.disable_span_reporting {
                out.disable_span_reporting = d;
                used = true;
            }
        }
        if used {
            out.policies.push(format!(
                "{}/{}",
                telemetry.metadata.namespace(),
                telemetry.metadata.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Vec<Resource> {
        let parsed = crate::parse_documents("test", yaml);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        parsed.resources
    }

    fn labels(app: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_string(), app.to_string())])
    }

    const LEVELS: &str = "\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 1
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ns, namespace: default}
spec:
  tracing:
  - randomSamplingPercentage: 50
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing:
  - match: {mode: SERVER}
    disableSpanReporting: true
";

    #[test]
    fn each_level_overrides_only_the_fields_it_sets() {
        let resources = parse(LEVELS);
        let reviews =
            |d| resolve_tracing(&resources, "istio-system", "default", &labels("reviews"), d);
        let server = reviews(TraceDirection::Server);
        assert_eq!(server.random_sampling_percentage, Some(50.0));
        assert!(server.disable_span_reporting);
        assert_eq!(
            server.policies,
            ["istio-system/mesh-default", "default/ns", "default/reviews"]
        );
        // The workload's entry is for SERVER spans only.
        let client = reviews(TraceDirection::Client);
        assert_eq!(client.random_sampling_percentage, Some(50.0));
        assert!(!client.disable_span_reporting);
        // Another namespace has only the mesh level.
        let other = resolve_tracing(
            &resources,
            "istio-system",
            "prod",
            &labels("reviews"),
            TraceDirection::Client,
        );
        assert_eq!(other.random_sampling_percentage, Some(1.0));
        assert_eq!(other.policies, ["istio-system/mesh-default"]);
    }

    #[test]
    fn nothing_set_means_the_mesh_default() {
        let none = resolve_tracing(
            &[],
            "istio-system",
            "default",
            &labels("x"),
            TraceDirection::Client,
        );
        assert_eq!(none, TracingResolution::default());
    }
}
