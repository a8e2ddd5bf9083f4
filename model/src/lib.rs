//! `loupe-model` is the one meaning of Istio's configuration in Loupe: the
//! resource types (`Gateway`, `VirtualService`, `DestinationRule`,
//! `ServiceEntry`, `WorkloadEntry`, `PeerAuthentication`,
//! `RequestAuthentication`, `AuthorizationPolicy`, `Telemetry`) as Istio's YAML spells
//! them, parsing of multi-document YAML, validation ([`analyze`]), what
//! applies to a workload (the endpoints ServiceEntries give their hosts in
//! [`registry`], JWT rules in [`request_auth`], mTLS modes in
//! [`peer_auth`], trace sampling in [`telemetry`]), and the two decisions the data path takes on every
//! request — where it goes ([`route::Router`]) and whether it is allowed
//! ([`authz::Authorizer`]) — as pure functions compiled once per
//! configuration.
//!
//! It owns no I/O and no runtime: it builds for `wasm32-unknown-unknown` so
//! the console validates in the browser with exactly the code the control
//! plane, the proxy and the CLI use.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod analyze;
pub mod authz;
pub mod duration;
pub mod host;
pub mod identity;
pub mod meta;
pub mod networking;
pub mod parse;
pub mod peer_auth;
pub mod registry;
pub mod request;
pub mod request_auth;
pub mod resource;
pub mod route;
pub mod security;
mod serde_util;
pub mod telemetry;

pub use analyze::{Diagnostic, Severity, analyze};
pub use identity::SpiffeId;
pub use meta::ObjectMeta;
pub use parse::{MAX_DOCUMENTS, MAX_INPUT_BYTES};
pub use request::Request;
pub use resource::{Kind, ParsedFile, Resource, ResourceKey, parse_documents, to_yaml};
