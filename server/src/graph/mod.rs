//! The service graph (`GET /api/graph`), built the way Kiali builds it.
//!
//! Algorithm:
//! 1. Read the `edge_rollups` rows of the window (`rollup::load`): per scrape
//!    interval, per reporter and per (source workload, destination workload,
//!    destination service, response code, security policy), the request
//!    count delta and latency bucket deltas.
//! 2. Run the appenders in order (see [`appender`] for why this order):
//!    traffic → dead-node removal → response time → throughput/error rate →
//!    security → health. Each reads and writes the one petgraph graph.
//! 3. Emit nodes sorted by id and edges by (source, target), so equal data
//!    gives byte-equal JSON (the golden tests rely on it).

mod api;
pub mod appender;
pub mod histogram;
pub mod model;
pub mod rollup;

use std::time::Duration;

pub use api::router;

pub use model::GraphType;

pub use rollup::Rollup;

/// What a graph request asks for.
#[derive(Clone, Copy, Debug)]
pub struct GraphOptions {
    pub graph_type: GraphType,
    pub window: Duration,
    pub inject_service_nodes: bool,
}

/// The whole pipeline over rows already read: pure, so tests and the
/// benchmark run it without a database.
pub fn build(options: GraphOptions, rows: &[Rollup]) -> loupe_api::graph::Graph {
    let mut g = model::Graph::new(options.graph_type, options.window);
    g.inject_service_nodes = options.inject_service_nodes;
    appender::traffic::append(&mut g, rows);
    appender::dead_node::append(&mut g);
    appender::response_time::append(&mut g);
    appender::throughput::append(&mut g);
    appender::security::append(&mut g);
    appender::health::append(&mut g);
    api::response(&g)
}
