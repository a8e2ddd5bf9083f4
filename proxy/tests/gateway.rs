//! Gateway mode: a `loupe-proxy --gateway` routes external traffic with the
//! VirtualServices bound to the Gateways that select its labels, and
//! reports as the `source`, as Istio's ingress gateway does.

mod support;

use loupe_push::Snapshot;
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_routes_by_its_gateway_resources() {
    let control = ControlPlane::start().await;
    let productpage = App::start("productpage-v1").await;
    let mut gateway = ProxySpec::sidecar(
        "istio-ingressgateway",
        "istio-ingressgateway",
        "v1",
        &control.url(),
    );
    gateway.gateway_listen = Some(addr(free_port()));
    let _process = gateway.spawn_binary();

    control.push(Snapshot {
        version: 1,
        resources: gateway_resources(),
        services: vec![service(
            "productpage",
            vec![endpoint(
                productpage.addr,
                "productpage-v1",
                "productpage",
                "v1",
            )],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    gateway.wait_ready().await;
    control.wait_ack(1, 1).await;
    {
        let seen = control.seen.lock().expect("seen");
        assert!(
            seen.hellos
                .iter()
                .any(|h| h.gateway && h.workload == "istio-ingressgateway")
        );
    }

    let listen = gateway.gateway_listen.expect("listen");
    let (status, body) = get(listen, "bookinfo.example.com", "/productpage")
        .await
        .expect("request");
    assert_eq!((status, body.as_str()), (200, "productpage-v1"));
    let seen = productpage.last().expect("request reached productpage");
    assert!(
        seen.headers.contains_key("traceparent"),
        "the gateway starts the trace"
    );

    let (status, body) = get(listen, "bookinfo.example.com", "/admin")
        .await
        .expect("request");
    assert_eq!(status, 404, "{body}");

    let m = gateway.metrics().await;
    assert_eq!(
        requests_total(
            &m,
            &[
                ("reporter", "source"),
                ("source_workload", "istio-ingressgateway"),
                ("destination_workload", "productpage-v1"),
                (
                    "destination_service",
                    "productpage.default.svc.cluster.local"
                ),
                ("response_code", "200"),
            ]
        ),
        1,
        "{m}"
    );
}

fn gateway_resources() -> Vec<loupe_push::Resource> {
    vec![
        resource(
            "Gateway",
            "bookinfo-gateway",
            json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "bookinfo-gateway", "namespace": "default"},
                "spec": {
                    "selector": {"istio": "ingressgateway"},
                    "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
                },
            }),
        ),
        resource(
            "VirtualService",
            "bookinfo",
            json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "bookinfo", "namespace": "default"},
                "spec": {
                    "hosts": ["*"],
                    "gateways": ["bookinfo-gateway"],
                    "http": [{
                        "match": [{"uri": {"exact": "/productpage"}}, {"uri": {"prefix": "/static"}}],
                        "route": [{"destination": {"host": "productpage", "port": {"number": 9080}}}],
                    }],
                },
            }),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_policies_apply_at_the_gateway() {
    let control = ControlPlane::start().await;
    let productpage = App::start("productpage-v1").await;
    let mut gateway = ProxySpec::sidecar(
        "istio-ingressgateway",
        "istio-ingressgateway",
        "v1",
        &control.url(),
    );
    gateway.gateway_listen = Some(addr(free_port()));
    gateway.spawn_task();
    let mut resources = gateway_resources();
    resources.push(resource(
        "AuthorizationPolicy",
        "gateway-deny-private",
        json!({
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "gateway-deny-private", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"istio": "ingressgateway"}},
                "action": "DENY",
                "rules": [{"to": [{"operation": {"paths": ["/productpage/private*"]}}]}],
            },
        }),
    ));
    control.push(Snapshot {
        version: 1,
        resources,
        services: vec![service(
            "productpage",
            vec![endpoint(
                productpage.addr,
                "productpage-v1",
                "productpage",
                "v1",
            )],
        )],
        mesh: None,
        jwks: Default::default(),
    });
    gateway.wait_ready().await;
    let listen = gateway.gateway_listen.expect("listen");
    let (status, _) = get(listen, "bookinfo.example.com", "/productpage")
        .await
        .expect("request");
    assert_eq!(status, 200);
    let (status, body) = get(listen, "bookinfo.example.com", "/productpage/private/1")
        .await
        .expect("request");
    assert_eq!((status, body.as_str()), (403, "RBAC: access denied\n"));
    assert_eq!(productpage.count(), 1, "the denied request was not routed");
}
