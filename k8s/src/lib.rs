//! `loupe-k8s` is what Loupe needs of Kubernetes that does not need an API
//! server: Istio's CustomResourceDefinitions generated from loupe-model's
//! types ([`crd`]), the install manifests as typed `k8s-openapi` objects
//! ([`manifest`], printed by `loupe manifest generate`), sidecar injection as
//! a pure Pod → JSONPatch function ([`inject`]), the validation of Istio's
//! kinds with loupe-model's diagnostics ([`validate`]), and the HTTPS server
//! that answers the API server's AdmissionReviews with both ([`webhook`]).
//!
//! It does not watch or write anything in a cluster: the cluster-mode config
//! store, registry and status writing live in `loupe-cluster`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod crd;
pub mod inject;
pub mod manifest;
pub mod selector;
pub mod validate;
pub mod webhook;
