//! Properties: printing then parsing a resource gives it back unchanged, and
//! neither parsing nor analyzing nor routing panics, whatever the input.

use std::collections::BTreeMap;

use loupe_model::networking::common::{
    Destination, HeaderOperations, Headers, Percent, PortSelector, StringMatch,
};
use loupe_model::networking::destination_rule::{DestinationRule, DestinationRuleSpec, Subset};
use loupe_model::networking::gateway::{
    Gateway, GatewaySpec, Port, Server, ServerTlsMode, ServerTlsSettings,
};
use loupe_model::networking::http_route::{
    Abort, Delay, HttpFaultInjection, HttpRedirect, HttpRetry, HttpRewrite,
};
use loupe_model::networking::traffic_policy::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings,
    OutlierDetection, SimpleLb, TcpSettings, TrafficPolicy,
};
use loupe_model::networking::virtual_service::{
    HttpMatchRequest, HttpRoute, HttpRouteDestination, RouteDestination, TcpRoute, VirtualService,
    VirtualServiceSpec,
};
use loupe_model::{
    ObjectMeta, Request, Resource, analyze, parse_documents, route::Router, to_yaml,
};
use proptest::collection::{btree_map, vec};
use proptest::option::of;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

/// Free text, including characters YAML must quote.
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,12}"
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(name(), name(), 0..3)
}

fn meta() -> impl Strategy<Value = ObjectMeta> {
    (name(), of(name()), labels()).prop_map(|(name, namespace, labels)| ObjectMeta {
        name,
        namespace,
        labels,
        ..ObjectMeta::default()
    })
}

fn string_match() -> impl Strategy<Value = StringMatch> {
    prop_oneof![
        text().prop_map(|s| StringMatch {
            exact: Some(s),
            ..StringMatch::default()
        }),
        text().prop_map(|s| StringMatch {
            prefix: Some(s),
            ..StringMatch::default()
        }),
        text().prop_map(|s| StringMatch {
            regex: Some(s),
            ..StringMatch::default()
        }),
        Just(StringMatch::default()),
    ]
}

fn percent() -> impl Strategy<Value = Percent> {
    (0u32..=200).prop_map(|h| Percent {
        value: f64::from(h) / 2.0,
    })
}

fn destination() -> impl Strategy<Value = Destination> {
    (name(), of(name()), of(1u32..70000)).prop_map(|(host, subset, port)| Destination {
        host,
        subset,
        port: port.map(|n| PortSelector { number: Some(n) }),
    })
}

fn header_ops() -> impl Strategy<Value = Headers> {
    (labels(), vec(name(), 0..2)).prop_map(|(set, remove)| Headers {
        request: Some(HeaderOperations {
            set,
            remove,
            ..HeaderOperations::default()
        }),
        response: None,
    })
}

fn http_match() -> impl Strategy<Value = HttpMatchRequest> {
    (
        of(string_match()),
        of(string_match()),
        btree_map(name(), string_match(), 0..2),
        btree_map(name(), string_match(), 0..2),
        of(0u32..70000),
        labels(),
        vec(name(), 0..2),
        any::<bool>(),
        of(name()),
        btree_map(name(), string_match(), 0..2),
    )
        .prop_map(
            |(
                uri,
                method,
                headers,
                query_params,
                port,
                source_labels,
                gateways,
                ignore_uri_case,
                source_namespace,
                without_headers,
            )| {
                HttpMatchRequest {
                    uri,
                    method,
                    headers,
                    query_params,
                    port,
                    source_labels,
                    gateways,
                    ignore_uri_case,
                    source_namespace,
                    without_headers,
                    ..HttpMatchRequest::default()
                }
            },
        )
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.5s".to_string()),
        Just("100ms".to_string()),
        Just("1m".to_string()),
        text()
    ]
}

fn http_route() -> impl Strategy<Value = HttpRoute> {
    (
        of(name()),
        vec(http_match(), 0..3),
        vec((destination(), of(any::<i32>()), of(header_ops())), 0..4),
        of(duration()),
        of((any::<i32>(), of(duration()), of(text()))),
        of((
            of(duration()),
            of(percent()),
            of(200i32..600),
            of(percent()),
        )),
        of(destination()),
        of(percent()),
        of((of(text()), of(name()))),
        of((of(text()), of(name()), of(300u32..310))),
    )
        .prop_map(
            |(
                name,
                matches,
                route,
                timeout,
                retries,
                fault,
                mirror,
                mirror_percentage,
                rewrite,
                redirect,
            )| HttpRoute {
                name,
                matches,
                route: route
                    .into_iter()
                    .map(|(destination, weight, headers)| HttpRouteDestination {
                        destination,
                        weight,
                        headers,
                    })
                    .collect(),
                timeout,
                retries: retries.map(|(attempts, per_try_timeout, retry_on)| HttpRetry {
                    attempts,
                    per_try_timeout,
                    retry_on,
                    ..HttpRetry::default()
                }),
                fault: fault.map(|(fixed_delay, dp, status, ap)| HttpFaultInjection {
                    delay: Some(Delay {
                        fixed_delay,
                        percentage: dp,
                        ..Delay::default()
                    }),
                    abort: Some(Abort {
                        http_status: status,
                        percentage: ap,
                        ..Abort::default()
                    }),
                }),
                mirror,
                mirror_percentage,
                rewrite: rewrite.map(|(uri, authority)| HttpRewrite {
                    uri,
                    authority,
                    ..HttpRewrite::default()
                }),
                redirect: redirect.map(|(uri, authority, redirect_code)| HttpRedirect {
                    uri,
                    authority,
                    redirect_code,
                    ..HttpRedirect::default()
                }),
                ..HttpRoute::default()
            },
        )
}

fn virtual_service() -> impl Strategy<Value = Resource> {
    (
        meta(),
        vec(
            prop_oneof![
                name(),
                Just("*.example.com".to_string()),
                Just("*".to_string())
            ],
            0..3,
        ),
        vec(prop_oneof![name(), Just("mesh".to_string())], 0..2),
        vec(http_route(), 0..4),
        vec(vec((destination(), of(0i32..100)), 1..3), 0..2),
        vec(
            prop_oneof![Just(".".to_string()), Just("*".to_string()), name()],
            0..2,
        ),
    )
        .prop_map(|(metadata, hosts, gateways, http, tcp, export_to)| {
            Resource::VirtualService(VirtualService {
                metadata,
                spec: VirtualServiceSpec {
                    hosts,
                    gateways,
                    http,
                    tcp: tcp
                        .into_iter()
                        .map(|route| TcpRoute {
                            route: route
                                .into_iter()
                                .map(|(destination, weight)| RouteDestination {
                                    destination,
                                    weight,
                                })
                                .collect(),
                            ..TcpRoute::default()
                        })
                        .collect(),
                    export_to,
                    ..VirtualServiceSpec::default()
                },
                ..VirtualService::default()
            })
        })
}

fn traffic_policy() -> impl Strategy<Value = TrafficPolicy> {
    (
        of(prop_oneof![
            Just(SimpleLb::RoundRobin),
            Just(SimpleLb::LeastRequest),
            Just(SimpleLb::Random)
        ]),
        of((of(-5i32..1000), of(duration()))),
        of((of(0u32..10), of(duration()), of(-10i32..120))),
        of(prop_oneof![
            Just(ClientTlsMode::IstioMutual),
            Just(ClientTlsMode::Disable),
            Just(ClientTlsMode::Mutual)
        ]),
    )
        .prop_map(|(simple, tcp, od, tls)| TrafficPolicy {
            load_balancer: simple.map(|s| LoadBalancerSettings {
                simple: Some(s),
                ..LoadBalancerSettings::default()
            }),
            connection_pool: tcp.map(
                |(max_connections, connect_timeout)| ConnectionPoolSettings {
                    tcp: Some(TcpSettings {
                        max_connections,
                        connect_timeout,
                        ..TcpSettings::default()
                    }),
                    http: None,
                },
            ),
            outlier_detection: od.map(|(c, interval, max)| OutlierDetection {
                consecutive_5xx_errors: c,
                interval,
                max_ejection_percent: max,
                ..OutlierDetection::default()
            }),
            tls: tls.map(|mode| ClientTlsSettings {
                mode: Some(mode),
                ..ClientTlsSettings::default()
            }),
            ..TrafficPolicy::default()
        })
}

fn destination_rule() -> impl Strategy<Value = Resource> {
    (
        meta(),
        name(),
        of(traffic_policy()),
        vec((name(), labels(), of(traffic_policy())), 0..3),
    )
        .prop_map(|(metadata, host, traffic_policy, subsets)| {
            Resource::DestinationRule(DestinationRule {
                api_version: "networking.istio.io/v1beta1".into(),
                metadata,
                spec: DestinationRuleSpec {
                    host,
                    traffic_policy,
                    subsets: subsets
                        .into_iter()
                        .map(|(name, labels, traffic_policy)| Subset {
                            name,
                            labels,
                            traffic_policy,
                        })
                        .collect(),
                    ..DestinationRuleSpec::default()
                },
            })
        })
}

fn gateway() -> impl Strategy<Value = Resource> {
    (
        meta(),
        labels(),
        vec(
            (
                0u32..70000,
                prop_oneof![Just("HTTP"), Just("HTTPS"), Just("TCP")],
                name(),
                vec(name(), 0..2),
                any::<bool>(),
            ),
            0..3,
        ),
    )
        .prop_map(|(metadata, selector, servers)| {
            Resource::Gateway(Gateway {
                api_version: "networking.istio.io/v1alpha3".into(),
                metadata,
                spec: GatewaySpec {
                    selector,
                    servers: servers
                        .into_iter()
                        .map(|(number, protocol, name, hosts, tls)| Server {
                            port: Some(Port {
                                number,
                                protocol: protocol.into(),
                                name,
                                target_port: None,
                            }),
                            hosts,
                            tls: tls.then(|| ServerTlsSettings {
                                mode: Some(ServerTlsMode::Simple),
                                credential_name: Some("cert".into()),
                                ..ServerTlsSettings::default()
                            }),
                            ..Server::default()
                        })
                        .collect(),
                },
            })
        })
}

fn resources() -> impl Strategy<Value = Vec<Resource>> {
    vec(
        prop_oneof![virtual_service(), destination_rule(), gateway()],
        0..5,
    )
}

/// JSON-like trees, to feed the schema arbitrary shapes.
fn tree() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            btree_map(
                prop_oneof![
                    name(),
                    Just("http".into()),
                    Just("route".into()),
                    Just("match".into()),
                    Just("weight".into()),
                    Just("destination".into()),
                    Just("host".into()),
                    Just("subsets".into())
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn print_then_parse_is_identity(resources in resources()) {
        let printed = to_yaml(&resources);
        let parsed = parse_documents("printed.yaml", &printed);
        prop_assert!(parsed.diagnostics.is_empty(), "{:?}\n{}", parsed.diagnostics, printed);
        prop_assert_eq!(&parsed.resources, &resources);
        // And through JSON, as the push protocol and the console carry them.
        let json = serde_json::to_string(&resources).expect("json");
        let back: Vec<Resource> = serde_json::from_str(&json).expect("from json");
        prop_assert_eq!(back, resources);
    }

    #[test]
    fn analyze_and_route_never_panic_on_generated_config(resources in resources(), host in name(), path in text()) {
        let _ = analyze(&resources);
        let router = Router::new(&resources);
        let mut request = Request::default();
        request.request.host = Some(host);
        request.request.path = Some(path);
        let _ = router.route(&request, None);
        let _ = router.route(&request, Some("default/gw"));
    }

    #[test]
    fn parse_and_analyze_never_panic_on_arbitrary_text(text in "\\PC{0,200}") {
        let parsed = parse_documents("fuzz.yaml", &text);
        let _ = analyze(&parsed.resources);
    }

    #[test]
    fn parse_and_analyze_never_panic_on_arbitrary_specs(spec in tree(), kind in prop_oneof![Just("VirtualService"), Just("DestinationRule"), Just("Gateway")]) {
        let doc = serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": kind,
            "metadata": {"name": "x"},
            "spec": spec,
        });
        let parsed = parse_documents("tree.json", &doc.to_string());
        let diagnostics = analyze(&parsed.resources);
        let _ = Router::new(&parsed.resources);
        for d in parsed.diagnostics.iter().chain(&diagnostics) {
            prop_assert!(!d.message.is_empty());
        }
    }
}
