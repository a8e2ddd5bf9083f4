//! The per-request decisions of the data path over a realistic config:
//! 100 AuthorizationPolicy rules (in DENY and ALLOW policies, selected by
//! labels, with principals, paths, methods and header conditions).
//! The request is allowed by the very last rule, so every rule is tried.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use loupe_model::Request;
use loupe_model::authz::{Authorizer, Decision};
use loupe_model::resource::Resource;
use loupe_model::security::AuthorizationPolicy;

const POLICIES: usize = 5;
const RULES_PER_POLICY: usize = 20;

/// 1 DENY + 4 ALLOW policies for `app: reviews` in `default`, 20 rules each.
fn policies_yaml() -> String {
    let mut yaml = String::new();
    for p in 0..POLICIES {
        let action = if p == 0 { "DENY" } else { "ALLOW" };
        yaml.push_str(&format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: policy-{p}\n  namespace: default\nspec:\n  action: {action}\n  selector:\n    matchLabels: {{app: reviews}}\n  rules:\n"
        ));
        for r in 0..RULES_PER_POLICY {
            let n = p * RULES_PER_POLICY + r;
            yaml.push_str(&format!(
                "  - from:\n    - source:\n        principals: [\"cluster.local/ns/team-{n}/sa/*\"]\n    - source:\n        namespaces: [\"ns-{n}\"]\n        ipBlocks: [\"10.{n}.0.0/16\"]\n    to:\n    - operation:\n        methods: [\"GET\", \"POST\"]\n        paths: [\"/api/v{n}/*\", \"*.json\"]\n        notPaths: [\"/api/v{n}/admin*\"]\n    when:\n    - key: request.headers[x-tenant]\n      values: [\"tenant-{n}\"]\n"
            ));
        }
        yaml.push_str("---\n");
    }
    yaml
}

fn resources(yaml: &str) -> Vec<Resource> {
    yaml.split("\n---")
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let policy: AuthorizationPolicy = serde_yaml_ng::from_str(d).expect("bench YAML parses");
            Resource::AuthorizationPolicy(policy)
        })
        .collect()
}

fn request() -> Request {
    let last = POLICIES * RULES_PER_POLICY - 1;
    serde_json::from_value(serde_json::json!({
        "source": {"principal": format!("cluster.local/ns/team-{last}/sa/frontend"), "ip": "10.0.0.5"},
        "destination": {"namespace": "default", "labels": {"app": "reviews", "version": "v1"}, "port": 9080},
        "request": {"method": "GET", "path": format!("/api/v{last}/items?page=2"),
                    "host": "reviews.default.svc.cluster.local",
                    "headers": {"x-tenant": format!("tenant-{last}"), "user-agent": "bench"}}
    }))
    .expect("bench request")
}

fn decide(c: &mut Criterion) {
    let resources = resources(&policies_yaml());
    let authorizer = Authorizer::new(&resources, "istio-system");
    let request = request();
    let verdict = authorizer.evaluate(&request);
    assert_eq!(verdict.decision, Decision::Allow);
    assert_eq!(verdict.policy, Some("default/policy-4"));

    c.bench_function("authorize/evaluate (100 rules, allowed by the last)", |b| {
        b.iter(|| black_box(authorizer.evaluate(black_box(&request))))
    });
    c.bench_function("authorize/with reason text (100 rules)", |b| {
        b.iter(|| black_box(authorizer.authorize(black_box(&request))))
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
