//! Route selection on the data path: one VirtualService with 100 http routes
//! (uri prefixes, headers, a regex) among 100 VirtualServices, and a request
//! that only the last route matches, so every route is tried.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use loupe_model::route::{Router, Selection};
use loupe_model::{Request, parse_documents};

const ROUTES: usize = 100;
const SERVICES: usize = 100;

fn config() -> String {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n",
    );
    for r in 0..ROUTES - 1 {
        yaml.push_str(&format!(
            "  - name: r{r}\n    match:\n    - uri: {{prefix: /api/v{r}/}}\n      headers:\n        x-tenant: {{exact: tenant-{r}}}\n    - headers:\n        end-user: {{exact: user-{r}}}\n    route:\n    - destination: {{host: reviews, subset: v{}}}\n      weight: 90\n    - destination: {{host: reviews, subset: canary}}\n      weight: 10\n    timeout: 2s\n",
            r % 3
        ));
    }
    yaml.push_str(
        "  - name: last\n    match:\n    - uri: {regex: '/books/[0-9]+/reviews'}\n      method: {exact: GET}\n    route:\n    - destination: {host: reviews, subset: v2}\n    retries: {attempts: 3, perTryTimeout: 1s, retryOn: 5xx}\n",
    );
    for s in 1..SERVICES {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc-{s}}}\nspec:\n  hosts: [svc-{s}]\n  http:\n  - route:\n    - destination: {{host: svc-{s}}}\n"
        ));
    }
    yaml
}

fn request() -> Request {
    serde_json::from_str(
        r#"{"source":{"principal":"cluster.local/ns/default/sa/productpage","namespace":"default"},
            "destination":{"namespace":"default","port":9080},
            "request":{"method":"GET","path":"/books/42/reviews?page=2","host":"reviews:9080",
                       "headers":{"x-tenant":"tenant-x","user-agent":"bench"}}}"#,
    )
    .expect("bench request")
}

fn bench(c: &mut Criterion) {
    let parsed = parse_documents("bench.yaml", &config());
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let router = Router::new(&parsed.resources);
    let request = request();
    let decision = router.route(&request, None);
    assert_eq!(
        decision.routes[0].subset.as_deref(),
        Some("v2"),
        "{}",
        decision.reason
    );

    c.bench_function("route: 100 routes, last matches (RouteDecision)", |b| {
        b.iter(|| black_box(router.route(black_box(&request), None)))
    });
    c.bench_function("select: 100 routes, last matches (borrowed)", |b| {
        b.iter(|| {
            let s = router.select(black_box(&request), None);
            black_box(matches!(s, Selection::Matched { .. }))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
