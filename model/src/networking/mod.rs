//! networking.istio.io: `Gateway`, `VirtualService`, `DestinationRule`,
//! `ServiceEntry`, `WorkloadEntry`, with the full field set of Istio's API
//! reference (camelCase in YAML).

pub mod common;
pub mod destination_rule;
pub mod gateway;
pub mod http_route;
pub mod service_entry;
pub mod traffic_policy;
pub mod virtual_service;
pub mod workload_entry;

pub use common::{Destination, HeaderOperations, Headers, Percent, PortSelector, StringMatch};
pub use destination_rule::{DestinationRule, DestinationRuleSpec, Subset};
pub use gateway::{Gateway, GatewaySpec, Server};
pub use http_route::{
    CorsPolicy, HttpFaultInjection, HttpMirrorPolicy, HttpRedirect, HttpRetry, HttpRewrite,
};
pub use service_entry::{
    LabelSelector, Location, Resolution, ServiceEntry, ServiceEntrySpec, ServicePort,
};
pub use traffic_policy::{ClientTlsMode, ClientTlsSettings, TrafficPolicy};
pub use virtual_service::{
    GatewayRef, HttpMatchRequest, HttpRoute, HttpRouteDestination, VirtualService,
    VirtualServiceSpec,
};
pub use workload_entry::{WorkloadEntry, WorkloadEntrySpec};
