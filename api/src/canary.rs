//! `GET /api/canary`, `PUT /api/canary/{namespace}/{name}`: the weights of
//! VirtualService routes that split traffic.

use serde::{Deserialize, Serialize};

use crate::config::Outcome;

/// A VirtualService with at least one route that splits traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Canary {
    /// `VirtualService/namespace/name`.
    pub key: String,
    pub namespace: String,
    pub name: String,
    /// The config revision these weights are from.
    pub revision: i32,
    pub hosts: Vec<String>,
    pub routes: Vec<CanaryRoute>,
}

/// One HTTP route (`spec.http[index]`) and its weighted destinations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CanaryRoute {
    pub index: usize,
    pub name: Option<String>,
    pub destinations: Vec<WeightedDestination>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightedDestination {
    pub host: String,
    pub subset: Option<String>,
    /// Percent; a lone destination without a weight has 100.
    pub weight: i64,
}

/// Body of `PUT /api/canary/{namespace}/{name}`: one route's new weights.
/// Destinations not named get 0; the weights must add up to 100.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightsRequest {
    pub route_index: usize,
    pub weights: Vec<WeightRequest>,
    /// The revision the sliders show: the server refuses (409) the change
    /// if someone else changed the VirtualService since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i32>,
}

/// A destination, by subset and/or host, and its weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub weight: i64,
}

/// The answer to a weights change: the revision it wrote and the route now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeightsResponse {
    pub key: String,
    pub revision: i32,
    pub outcome: Outcome,
    pub route: CanaryRoute,
}
