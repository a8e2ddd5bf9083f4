//! Route selection: which VirtualService applies to a request, which of its
//! http routes matches first, and the weighted destinations it sends to.
//! [`Router`] is built once per configuration; [`Router::route`] only looks up.
//! (Skeleton: the model work fills this in.)

use serde::{Deserialize, Serialize};

use crate::request::Request;
use crate::resource::Resource;

/// One destination with its effective weight in percent of the route's total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightedDestination {
    /// Fully qualified: `reviews.default.svc.cluster.local`.
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
    pub weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retries {
    pub attempts: u32,
    pub per_try_timeout_ms: Option<u64>,
    pub retry_on: Option<String>,
}

/// The outcome of [`Router::route`]; serializes as `loupe route --output json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    pub routes: Vec<WeightedDestination>,
    pub fault: Option<serde_json::Value>,
    pub timeout_ms: Option<u64>,
    pub retries: Option<Retries>,
    pub rewrite: Option<serde_json::Value>,
    pub redirect: Option<serde_json::Value>,
    pub mirror: Option<serde_json::Value>,
    pub reason: String,
}

/// The compiled routing table of a configuration.
#[derive(Clone, Debug, Default)]
pub struct Router {}

impl Router {
    /// Compiles every VirtualService (regexes, host tables) once.
    pub fn new(_resources: &[Resource]) -> Router {
        Router {}
    }

    /// Routes `request` as sidecar traffic, or as traffic through the gateway
    /// `namespace/name` when `gateway` is given.
    pub fn route(&self, _request: &Request, _gateway: Option<&str>) -> RouteDecision {
        RouteDecision::default()
    }
}
