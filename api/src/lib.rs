//! `loupe-api` owns the console's JSON contract: every body the console
//! server's routes answer or accept — graph, metrics, traces, config and its
//! history, canary weights, audit log, proxy status, the mesh's parts,
//! health, event payloads, errors, login and users — as serde types, and the
//! small pure rules both ends must agree on (health thresholds
//! ([`health`]), percent-encoding of path segments ([`encode`])). The
//! server serializes these types, the frontend and the CLI deserialize the
//! same ones, so a change to the contract that one side misses is a compile
//! error, not a blank page. Serde only, no I/O: it builds for `wasm32`.
//! With the `openapi` feature the types also derive utoipa's schemas, from
//! which the server writes `/api/openapi.json`.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod audit;
pub mod auth;
pub mod canary;
pub mod config;
mod encode;
pub mod error;
pub mod events;
pub mod graph;
pub mod health;
pub mod mesh;
pub mod metrics;
pub mod traces;

pub use encode::encode;
