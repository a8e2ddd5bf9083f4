//! `loupe-push` is the wire contract between the control plane and the
//! proxies: one bidirectional gRPC stream per proxy (`Discovery.Stream`) on
//! which the proxy introduces itself and the control plane pushes complete,
//! versioned snapshots that the proxy ACKs or NACKs (see `proto/push.proto`).
//!
//! It owns only the protocol, so the proxy links it without linking the
//! control plane. The Rust code in `src/gen/` is generated from the proto by
//! `tonic-prost-build` and committed, so building needs no `protoc`;
//! regenerate it with `scripts/gen-push.sh` after changing the proto.
#![deny(rust_2018_idioms)]

#[allow(clippy::all, rust_2018_idioms)]
#[path = "gen/loupe.push.v1.rs"]
mod generated;

pub use generated::*;

/// The largest snapshot either end of the push stream handles: the control
/// plane refuses to encode a bigger one and the proxy to decode it (tonic's
/// default of 4 MiB would cut off a mesh of a few thousand endpoints; this
/// still bounds what a proxy buffers).
pub const MAX_SNAPSHOT_SIZE: usize = 64 * 1024 * 1024;
