//! The per-request decisions of the data path, over a config parsed from
//! YAML text with `parse_documents`:
//!
//! - routing: one VirtualService with 100 http routes (uri prefix + header
//!   match, 90/10 weighted subsets); the request matches the last route;
//! - authorization: 100 rules in 1 DENY + 4 ALLOW policies selecting the
//!   workload. Two shapes: rules that name their source (principals,
//!   namespaces — indexed by source namespace), rules on request paths
//!   (indexed by path prefix), and rules on headers only (every rule is
//!   tried). The request is allowed by the very last rule in each.
//!
//! Besides criterion's wall-clock figures it prints CPU time per decision
//! (from `/proc/thread-self/stat`), which stays meaningful on a machine
//! shared with other work.
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

/// Rules on header conditions only: no index applies, every rule is tried.
fn by_header(n: usize) -> String {
    format!(
        "  - when:\n    - key: request.headers[x-tenant]\n      values: [\"tenant-{n}\"]\n    - key: source.ip\n      values: [\"10.0.0.0/8\"]\n"
    )
}

/// Rules on request attributes (paths, methods, headers).
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

/// CPU time (user + system) of this thread, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Nanoseconds of CPU per call of `f`, over about two seconds of CPU
/// (assumes Linux's usual 100 clock ticks per second).
fn cpu_ns_per_call(mut f: impl FnMut()) -> Option<f64> {
    let start = cpu_ticks()?;
    let mut calls: u64 = 0;
    loop {
        for _ in 0..10_000 {
            f();
        }
        calls += 10_000;
        let ticks = cpu_ticks()? - start;
        if ticks >= 200 {
            return Some(ticks as f64 * 10_000_000.0 / calls as f64);
        }
    }
}

fn decide(c: &mut Criterion) {
    let router = Router::new(&parse(&virtual_service_yaml()));
    let by_source = Authorizer::new(&parse(&policies_yaml(by_source)), "istio-system");
    let by_path = Authorizer::new(&parse(&policies_yaml(by_request)), "istio-system");
    let by_header = Authorizer::new(&parse(&policies_yaml(by_header)), "istio-system");
    let request = request();

    let routed = router.route(&request, None);
    assert_eq!(routed.routes.len(), 2, "{}", routed.reason);
    println!("route: {}", routed.reason);
    for authorizer in [&by_source, &by_path, &by_header] {
        let verdict = authorizer.evaluate(&request);
        assert_eq!(verdict.decision, Decision::Allow);
        assert_eq!(verdict.policy, Some("default/policy-4"));
    }

    let cases: [(&str, Option<&Authorizer>); 4] = [
        ("route only (100 routes)", None),
        (
            "route + authorize, 100 source rules (namespace index)",
            Some(&by_source),
        ),
        (
            "route + authorize, 100 path rules (path index)",
            Some(&by_path),
        ),
        (
            "route + authorize, 100 header-only rules (all tried)",
            Some(&by_header),
        ),
    ];
    for (name, authorizer) in cases {
        let figure = cpu_ns_per_call(|| {
            black_box(router.select(black_box(&request), None));
            if let Some(a) = authorizer {
                black_box(a.evaluate(black_box(&request)));
            }
        });
        if let Some(ns) = figure {
            println!("CPU time per request, {name}: {ns:.0} ns");
        }
    }

    c.bench_function("route/select (100 routes, last matches)", |b| {
        b.iter(|| {
            black_box(router.select(black_box(&request), None));
        })
    });
    let shapes = [
        ("100 source rules, namespace index", &by_source),
        ("100 path rules, path index", &by_path),
        ("100 header-only rules, all tried", &by_header),
    ];
    for (name, authorizer) in shapes {
        c.bench_function(&format!("authorize/evaluate ({name})"), |b| {
            b.iter(|| black_box(authorizer.evaluate(black_box(&request))))
        });
        c.bench_function(&format!("route+authorize ({name})"), |b| {
            b.iter(|| {
                black_box(router.select(black_box(&request), None));
                black_box(authorizer.evaluate(black_box(&request)));
            })
        });
    }
    c.bench_function("authorize/with reason text (authz check CLI)", |b| {
        b.iter(|| black_box(by_source.authorize(black_box(&request))))
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
