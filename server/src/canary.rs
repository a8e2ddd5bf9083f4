//! Canary weights for the console's sliders.
//!
//! - `GET /api/canary` — every VirtualService HTTP route that splits traffic
//!   (two or more destinations, or explicit weights), with its destinations
//!   and their weights.
//! - `PUT /api/canary/{namespace}/{name}` with
//!   `{"route_index":0,"weights":[{"subset":"v1","weight":0},…],"revision":N?}`
//!   rewrites that route's weights and stores a new revision through the
//!   config store (author: the logged-in user), which validates it like any change.
//!
//! Weights are edited on the stored Kubernetes JSON, not on typed structs, so
//! every other field of the VirtualService is written back exactly as it was.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use loupe_api::canary::{
    Canary, CanaryRoute, WeightRequest, WeightedDestination, WeightsRequest, WeightsResponse,
};
use loupe_api::error::ErrorBody;
use loupe_model::{Diagnostic, Kind, ResourceKey, Severity};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Principal;
use crate::config::StoredResource;
use crate::error::ApiError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set_weights))
}

/// The `spec.http[index].route` entries of a VirtualService object.
fn http_routes(object: &Value) -> impl Iterator<Item = (usize, &Value)> {
    object["spec"]["http"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
}

fn destinations(route: &Value) -> Vec<WeightedDestination> {
    let entries = route["route"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let lone = entries.len() == 1;
    entries
        .iter()
        .map(|d| WeightedDestination {
            host: d["destination"]["host"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            subset: d["destination"]["subset"].as_str().map(str::to_string),
            weight: d["weight"].as_i64().unwrap_or(if lone { 100 } else { 0 }),
        })
        .collect()
}

/// The routes of `vs` that a slider can act on.
pub fn canary_of(vs: &StoredResource) -> Option<Canary> {
    let routes: Vec<CanaryRoute> = http_routes(&vs.object)
        .filter(|(_, r)| {
            let entries = r["route"].as_array().map(Vec::as_slice).unwrap_or_default();
            entries.len() >= 2 || entries.iter().any(|d| d.get("weight").is_some())
        })
        .map(|(index, r)| CanaryRoute {
            index,
            name: r["name"].as_str().map(str::to_string),
            destinations: destinations(r),
        })
        .collect();
    if routes.is_empty() {
        return None;
    }
    Some(Canary {
        key: vs.key.to_string(),
        namespace: vs.key.namespace.clone(),
        name: vs.key.name.clone(),
        revision: vs.revision,
        hosts: vs.object["spec"]["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect(),
        routes,
    })
}

/// Every VirtualService route that splits traffic, with its weights.
#[utoipa::path(get, path = "/canary", tag = "canary",
    responses((status = 200, body = Vec<Canary>)))]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<Canary>>, ApiError> {
    let services = state.store.list(Some(Kind::VirtualService)).await?;
    Ok(Json(services.iter().filter_map(canary_of).collect()))
}

/// Sets one route's weights, writing a new revision as the logged-in user.
#[utoipa::path(put, path = "/canary/{namespace}/{name}", tag = "canary",
    params(("namespace" = String, Path), ("name" = String, Path, description = "the VirtualService")),
    request_body = WeightsRequest,
    responses((status = 200, body = WeightsResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_weights(
    State(state): State<AppState>,
    principal: Principal,
    Path((namespace, name)): Path<(String, String)>,
    body: Result<Json<WeightsRequest>, JsonRejection>,
) -> Result<Json<WeightsResponse>, ApiError> {
    let Json(request) = body?;
    let key = crate::config::key("VirtualService", &namespace, &name)?;
    let current = state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{key} is not in the config store")))?;
    if let Some(seen) = request.revision
        && seen != current.revision
    {
        return Err(ApiError::Conflict(format!(
            "{key} is at revision {} now, not {seen}: reload and try again",
            current.revision
        )));
    }
    let mut object = current.object.clone();
    set_route_weights(&key, &mut object, &request)?;
    let body = serde_json::to_string(&object).map_err(|e| ApiError::Internal {
        context: "serializing the VirtualService",
        source: Box::new(e),
    })?;
    let applied = state.store.put(&key, &body, &principal.user).await?;
    tracing::info!(resource = %key, route = request.route_index, revision = applied.revision, "canary weights set");
    let route = CanaryRoute {
        index: request.route_index,
        name: object["spec"]["http"][request.route_index]["name"]
            .as_str()
            .map(str::to_string),
        destinations: destinations(&object["spec"]["http"][request.route_index]),
    };
    Ok(Json(WeightsResponse {
        key: key.to_string(),
        revision: applied.revision,
        outcome: crate::config::outcome_json(applied.outcome),
        route,
    }))
}

/// Writes `request`'s weights into `spec.http[route_index].route[*].weight`.
/// Destinations the request does not name get 0; the weights must be
/// non-negative, name each destination at most once and add up to 100.
pub fn set_route_weights(
    key: &ResourceKey,
    object: &mut Value,
    request: &WeightsRequest,
) -> Result<(), ApiError> {
    let i = request.route_index;
    let path = format!("spec.http[{i}].route");
    let invalid = |message: String| {
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            resource: key.to_string(),
            path: path.clone(),
            message: message.clone(),
        };
        ApiError::Invalid {
            message,
            diagnostics: vec![diagnostic],
        }
    };
    let Some(entries) = object["spec"]["http"]
        .get_mut(i)
        .and_then(|r| r.get_mut("route"))
        .and_then(Value::as_array_mut)
        .filter(|e| !e.is_empty())
    else {
        return Err(invalid(format!(
            "{key} has no HTTP route {i} with destinations"
        )));
    };
    let mut weights = vec![0i64; entries.len()];
    let mut named = vec![false; entries.len()];
    for w in &request.weights {
        if w.weight < 0 {
            return Err(invalid(format!(
                "weight {} for {} is negative",
                w.weight,
                label(w)
            )));
        }
        let matches: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                let dest = &d["destination"];
                w.subset
                    .as_deref()
                    .is_none_or(|s| dest["subset"].as_str() == Some(s))
                    && w.host
                        .as_deref()
                        .is_none_or(|h| dest["host"].as_str() == Some(h))
            })
            .map(|(j, _)| j)
            .collect();
        let j = match matches.as_slice() {
            [j] => *j,
            [] => {
                return Err(invalid(format!(
                    "route {i} has no destination {}",
                    label(w)
                )));
            }
            _ => {
                return Err(invalid(format!(
                    "{} matches several destinations of route {i}: give host and subset",
                    label(w)
                )));
            }
        };
        if std::mem::replace(&mut named[j], true) {
            return Err(invalid(format!("{} is given twice", label(w))));
        }
        weights[j] = w.weight;
    }
    let sum: i64 = weights.iter().sum();
    if sum != 100 {
        return Err(invalid(format!(
            "the weights add up to {sum}, they must add up to 100"
        )));
    }
    for (entry, weight) in entries.iter_mut().zip(weights) {
        if let Some(o) = entry.as_object_mut() {
            o.insert("weight".into(), weight.into());
        }
    }
    Ok(())
}

fn label(w: &WeightRequest) -> String {
    match (&w.host, &w.subset) {
        (Some(h), Some(s)) => format!("{h} subset {s}"),
        (Some(h), None) => format!("host {h}"),
        (None, Some(s)) => format!("subset {s}"),
        (None, None) => "a destination without host or subset".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vs() -> Value {
        json!({"spec": {"hosts": ["reviews"], "http": [
            {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
             "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
            {"route": [
                {"destination": {"host": "reviews", "subset": "v1"}, "weight": 80},
                {"destination": {"host": "reviews", "subset": "v2"}, "weight": 20},
                {"destination": {"host": "reviews", "subset": "v3"}, "weight": 0}]}]}})
    }

    fn key() -> ResourceKey {
        ResourceKey {
            kind: Kind::VirtualService,
            namespace: "default".into(),
            name: "reviews".into(),
        }
    }

    fn req(route_index: usize, weights: &[(&str, i64)]) -> WeightsRequest {
        WeightsRequest {
            route_index,
            weights: weights
                .iter()
                .map(|(s, w)| WeightRequest {
                    subset: Some(s.to_string()),
                    host: None,
                    weight: *w,
                })
                .collect(),
            revision: None,
        }
    }

    #[test]
    fn weights_are_written_and_unnamed_destinations_get_zero() {
        let mut o = vs();
        set_route_weights(&key(), &mut o, &req(1, &[("v3", 100)])).unwrap();
        let weights: Vec<i64> = destinations(&o["spec"]["http"][1])
            .iter()
            .map(|d| d.weight)
            .collect();
        assert_eq!(weights, [0, 0, 100]);
        // The other route is untouched.
        assert_eq!(o["spec"]["http"][0], vs()["spec"]["http"][0]);
    }

    #[test]
    fn bad_weights_are_refused_with_the_reason() {
        for (r, says) in [
            (req(1, &[("v1", 50), ("v2", 40)]), "add up to 90"),
            (req(1, &[("v1", 120), ("v2", -20)]), "negative"),
            (req(1, &[("v9", 100)]), "no destination subset v9"),
            (req(1, &[("v1", 50), ("v1", 50)]), "twice"),
            (req(7, &[("v1", 100)]), "no HTTP route 7"),
        ] {
            let mut o = vs();
            match set_route_weights(&key(), &mut o, &r) {
                Err(ApiError::Invalid {
                    message,
                    diagnostics,
                }) => {
                    assert!(message.contains(says), "{message}");
                    assert_eq!(diagnostics[0].resource, "VirtualService/default/reviews");
                }
                other => panic!("expected Invalid ({says}), got {other:?}"),
            }
            assert_eq!(o, vs(), "a refused change leaves the object alone");
        }
    }
}
