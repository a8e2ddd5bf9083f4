//! `loupe-control` is the control plane of local mode: the config store
//! ([`store::ConfigStore`], Istio resources in Postgres, every change a
//! validated, audited revision), the workload registry built from connected
//! proxies ([`registry::Registry`], which gives every service its endpoints),
//! and the push stream that sends each proxy complete, versioned snapshots
//! and records its ACKs and NACKs ([`push::PushService`]) — each proxy the
//! part of the config visible in its namespace ([`scope`]). [`serve`] runs it
//! all; [`ControlPlane`] does the same on a listener of the caller's choosing.
//!
//! It does not parse or validate Istio YAML itself (`loupe-model` does), does
//! not define the wire protocol (`loupe-push` does), and does not own the
//! schema (`loupe-db` does). Cluster mode (Kubernetes CRDs) and the
//! certificate authority are not here yet.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod config_watch;
pub mod mesh;
pub mod push;
pub mod registry;
pub mod scope;
mod server;
pub mod snapshot;
pub mod store;

pub use config_watch::RECHECK_INTERVAL;
pub use server::{ControlError, ControlPlane, Options, serve, shutdown_signal};
pub use store::{Applied, AuditEntry, ConfigStore, Outcome, Revision, StoreError, StoredResource};
