//! What the proxy reports about the traffic it carries: Istio-standard
//! Prometheus metrics ([`metrics`], [`tcp`] for opaque TCP) and OTLP spans ([`span`], [`export`]),
//! with W3C/B3 context propagation ([`propagation`]) and sampling as the
//! mesh and its Telemetry resources say ([`sampling`]).

pub mod export;
pub mod metrics;
pub mod propagation;
pub mod sampling;
pub mod span;
pub mod tcp;
