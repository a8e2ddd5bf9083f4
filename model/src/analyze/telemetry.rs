//! Checks of `Telemetry`: what Istio's validation rejects (errors), and the
//! fields Loupe accepts without acting on them (warnings that say so).

use super::{Diagnostic, Report};
use crate::resource::Resource;
use crate::telemetry::Telemetry;

pub(super) fn check(resources: &[Resource], out: &mut Vec<Diagnostic>) {
    for r in resources {
        if let Resource::Telemetry(t) = r {
            telemetry(r, t, out);
        }
    }
}

fn not_enforced(report: &mut Report<'_>, path: String, what: &str) {
    report.warning(
        path,
        format!("{what}: accepted but not enforced by Loupe's proxies"),
    );
}

fn telemetry(r: &Resource, t: &Telemetry, out: &mut Vec<Diagnostic>) {
    let mut report = Report {
        resource: r.key().to_string(),
        out,
    };
    let spec = &t.spec;
    if spec.target_ref.is_some() || !spec.target_refs.is_empty() {
        let path = if spec.target_ref.is_some() {
            "spec.targetRef"
        } else {
            "spec.targetRefs"
        };
        not_enforced(
            &mut report,
            path.into(),
            "`targetRef(s)` (Gateway API and waypoint attachment; select sidecars with `selector`)",
        );
    }
    if spec.selector.is_some() && (spec.target_ref.is_some() || !spec.target_refs.is_empty()) {
        report.error(
            "spec.selector",
            "`selector` and `targetRef(s)` cannot be set together (Istio rejects it); keep one",
        );
    }
    for (i, tracing) in spec.tracing.iter().enumerate() {
        let at = format!("spec.tracing[{i}]");
        if let Some(p) = tracing.random_sampling_percentage
            && !(0.0..=100.0).contains(&p)
        {
            report.error(
                format!("{at}.randomSamplingPercentage"),
                format!(
                    "randomSamplingPercentage {p} is outside 0–100 (Istio rejects it); \
                     give a percentage, e.g. 1 for one trace in a hundred"
                ),
            );
        }
        if !tracing.providers.is_empty() {
            not_enforced(
                &mut report,
                format!("{at}.providers"),
                "`providers` (spans always go to Loupe's collector, over OTLP)",
            );
        }
        if !tracing.custom_tags.is_empty() {
            not_enforced(&mut report, format!("{at}.customTags"), "`customTags`");
        }
        if tracing.use_request_id_for_trace_sampling.is_some() {
            not_enforced(
                &mut report,
                format!("{at}.useRequestIdForTraceSampling"),
                "`useRequestIdForTraceSampling` (Loupe samples each new trace at random)",
            );
        }
    }
    if !spec.metrics.is_empty() {
        not_enforced(
            &mut report,
            "spec.metrics".into(),
            "`metrics` (Loupe's proxies always report Istio's standard metrics with their standard labels)",
        );
    }
    if !spec.access_logging.is_empty() {
        not_enforced(
            &mut report,
            "spec.accessLogging".into(),
            "`accessLogging` (Loupe's access log is the proxy's debug log, \
             `RUST_LOG=loupe_proxy::access=debug`)",
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{Severity, analyze, parse_documents};

    #[test]
    fn unenforced_fields_are_named_and_bad_percentages_refused() {
        let parsed = parse_documents(
            "t.yaml",
            "\
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 150
    providers: [{name: zipkin}]
  metrics:
  - overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]
",
        );
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let found = analyze(&parsed.resources);
        let at = |path: &str| found.iter().find(|d| d.path == path).cloned();
        let bad = at("spec.tracing[0].randomSamplingPercentage").expect("percentage");
        assert_eq!(bad.severity, Severity::Error);
        assert!(
            at("spec.tracing[0].providers").is_some_and(|d| d.message.contains("not enforced"))
        );
        assert!(at("spec.metrics").is_some_and(|d| d.severity == Severity::Warning));
    }

    #[test]
    fn an_istio_kind_loupe_lacks_is_reported_not_skipped() {
        let parsed = parse_documents(
            "s.yaml",
            "\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec: {egress: [{hosts: [\"./*\"]}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
",
        );
        assert!(parsed.resources.is_empty());
        assert_eq!(parsed.diagnostics.len(), 1, "{:?}", parsed.diagnostics);
        let d = &parsed.diagnostics[0];
        assert_eq!(d.resource, "Sidecar/default/default");
        assert!(d.message.contains("does not implement"), "{}", d.message);
    }
}
