//! `loupe-control` is the control plane of local mode: the certificate
//! authority ([`ca::CertificateAuthority`], a generated or plugged-in root
//! in a key directory, workload certificates from the proxies' CSRs, served
//! by [`certificates::CertificateService`]), authentication of every call
//! ([`authn`]: one authenticator interface, bootstrap tokens in local mode,
//! and what an authenticated proxy may claim), the config store
//! ([`store::ConfigStore`], Istio resources in Postgres, every change a
//! validated, audited revision), the registry of services and their
//! endpoints from the operator's WorkloadEntries and ServiceEntries
//! ([`declared`]), the connected proxies ([`registry::Registry`]),
//! and the push stream that sends each proxy complete, versioned snapshots
//! and records its ACKs and NACKs ([`push::PushService`]) — each proxy the
//! part of the config visible in its namespace ([`scope`]). [`serve`] runs it
//! all; [`ControlPlane`] does the same on a listener of the caller's choosing.
//!
//! It does not parse or validate Istio YAML itself (`loupe-model` does), does
//! not define the wire protocol (`loupe-push` does), and does not own the
//! schema (`loupe-db` does). Cluster mode (Kubernetes CRDs, registry and
//! TokenReview) is `loupe-cluster`, which plugs into
//! [`ControlPlane::with_authenticator`], [`store::ConfigStore::mirror`] and
//! [`snapshot::Publisher::set_platform`]. The gRPC port speaks TLS only ([`tls`]).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod authn;
pub mod ca;
pub mod certificates;
mod config_watch;
pub mod debounce;
pub mod declared;
pub mod jwks;
pub mod mesh;
pub mod push;
pub mod registry;
pub mod scope;
mod server;
pub mod snapshot;
pub mod store;
pub mod tls;

pub use config_watch::RECHECK_INTERVAL;
pub use server::{ControlError, ControlPlane, MAX_MESSAGE_SIZE, Options, serve, shutdown_signal};
pub use store::{
    Applied, AuditEntry, AuditFilter, Authors, ConfigStore, MIRROR_MESSAGE, Newest, Outcome,
    Revision, StoreError, StoredResource,
};
