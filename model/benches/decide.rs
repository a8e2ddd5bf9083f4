//! The per-request decisions of the data path, over a config parsed from
//! YAML text with `parse_documents`:
//!
//! - routing: one VirtualService with 100 http routes (uri prefix + header
//!   match, 90/10 weighted subsets); the request matches the last route;
//! - authorization: 100 rules in 1 DENY + 4 ALLOW policies selecting the
//!   workload. Two shapes: rules that name their source (principals,
//!   namespaces — indexed by source namespace), and rules on request
//!   attributes only (paths, methods, headers — every rule is tried). The
//!   request is allowed by the very last rule in both.
//!
//! Run: `cargo bench -p loupe-model --bench decide`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use loupe_model::authz::{Authorizer, Decision};
use loupe_model::route::Router;
use loupe_model::{Request, Resource, parse_documents};

const ROUTES: usize = 100;
const POLICIES: usize = 5;
const RULES_PER_POLICY: usize = 20;
const LAST_RULE: usize = POLICIES * RULES_PER_POLICY - 1;

fn virtual_service_yaml() -> String {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  hosts: [reviews]\n  http:\n",
    );
    for n in 0..ROUTES {
        yaml.push_str(&format!(
            "  - match:\n    - uri: {{prefix: /api/v{n}/}}\n      headers:\n        x-tenant: {{exact: tenant-{n}}}\n    route:\n    - destination: {{host: reviews, subset: v1}}\n      weight: 90\n    - destination: {{host: reviews, subset: v2}}\n      weight: 10\n    timeout: 2s\n"
        ));
    }
    yaml.push_str("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\n  namespace: default\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: v1}\n  - name: v2\n    labels: {version: v2}\n");
    yaml
}

/// 1 DENY + 4 ALLOW policies for `app: reviews` in `default`, 20 rules each.
/// `rule(n)` writes rule number `n`.
fn policies_yaml(rule: impl Fn(usize) -> String) -> String {
    let mut yaml = String::new();
    for p in 0..POLICIES {
        let action = if p == 0 { "DENY" } else { "ALLOW" };
        yaml.push_str(&format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: policy-{p}\n  namespace: default\nspec:\n  action: {action}\n  selector:\n    matchLabels: {{app: reviews}}\n  rules:\n"
        ));
        for r in 0..RULES_PER_POLICY {
            yaml.push_str(&rule(p * RULES_PER_POLICY + r));
        }
        yaml.push_str("---\n");
    }
    yaml
}

/// Rules naming their source: indexable by source namespace.
fn by_source(n: usize) -> String {
    format!(
        "  - from:\n    - source:\n        principals: [\"cluster.local/ns/team-{n}/sa/*\"]\n    - source:\n        namespaces: [\"team-{n}\"]\n        ipBlocks: [\"10.0.0.0/16\"]\n    to:\n    - operation:\n        methods: [\"GET\", \"POST\"]\n        paths: [\"/api/v{n}/*\", \"*.json\"]\n        notPaths: [\"/api/v{n}/admin*\"]\n    when:\n    - key: request.headers[x-tenant]\n      values: [\"tenant-{n}\"]\n"
    )
}

/// Rules on request attributes only: every rule must be tried.
fn by_request(n: usize) -> String {
    format!(
        "  - to:\n    - operation:\n        methods: [\"GET\", \"POST\"]\n        paths: [\"/api/v{n}/*\"]\n        notPaths: [\"/api/v{n}/admin*\"]\n    when:\n    - key: request.headers[x-tenant]\n      values: [\"tenant-{n}\"]\n    - key: source.ip\n      values: [\"10.0.0.0/8\"]\n"
    )
}

fn parse(yaml: &str) -> Vec<Resource> {
    let parsed = parse_documents("bench.yaml", yaml);
    assert!(
        !loupe_model::analyze::has_errors(&parsed.diagnostics),
        "{:?}",
        parsed.diagnostics
    );
    parsed.resources
}

fn request() -> Request {
    let n = LAST_RULE;
    serde_json::from_value(serde_json::json!({
        "source": {"principal": format!("cluster.local/ns/team-{n}/sa/frontend"), "ip": "10.0.0.5"},
        "destination": {"namespace": "default", "labels": {"app": "reviews", "version": "v1"}, "port": 9080},
        "request": {"method": "GET", "path": format!("/api/v{n}/items?page=2"),
                    "host": "reviews.default.svc.cluster.local:9080",
                    "headers": {"x-tenant": format!("tenant-{n}"), "user-agent": "bench"}}
    }))
    .expect("bench request")
}

fn decide(c: &mut Criterion) {
    let router = Router::new(&parse(&virtual_service_yaml()));
    let indexed = Authorizer::new(&parse(&policies_yaml(by_source)), "istio-system");
    let scanned = Authorizer::new(&parse(&policies_yaml(by_request)), "istio-system");
    let request = request();

    let routed = router.route(&request, None);
    assert_eq!(routed.routes.len(), 2, "{}", routed.reason);
    println!("route: {}", routed.reason);
    for authorizer in [&indexed, &scanned] {
        let verdict = authorizer.evaluate(&request);
        assert_eq!(verdict.decision, Decision::Allow);
        assert_eq!(verdict.policy, Some("default/policy-4"));
    }

    c.bench_function("route/select (100 routes, last matches)", |b| {
        b.iter(|| {
            black_box(router.select(black_box(&request), None));
        })
    });
    c.bench_function("authorize/evaluate (100 source rules, indexed)", |b| {
        b.iter(|| black_box(indexed.evaluate(black_box(&request))))
    });
    c.bench_function("authorize/evaluate (100 request rules, all tried)", |b| {
        b.iter(|| black_box(scanned.evaluate(black_box(&request))))
    });
    c.bench_function("route+authorize (indexed rules)", |b| {
        b.iter(|| {
            black_box(router.select(black_box(&request), None));
            black_box(indexed.evaluate(black_box(&request)));
        })
    });
    c.bench_function("route+authorize (all rules tried)", |b| {
        b.iter(|| {
            black_box(router.select(black_box(&request), None));
            black_box(scanned.evaluate(black_box(&request)));
        })
    });
    c.bench_function("authorize/with reason text (authz check CLI)", |b| {
        b.iter(|| black_box(indexed.authorize(black_box(&request))))
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
