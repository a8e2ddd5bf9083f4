//! The traffic policies of each VirtualService route, compiled once per
//! config into the form the request path uses: fault injection
//! (delay/abort), retries (attempts, `retryOn`, per-try timeout), timeout,
//! rewrite, redirect and direct response — with Istio's defaults where the
//! route says nothing.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use loupe_model::route::{CompiledRoute, Retries};
use rand::Rng;
use serde_json::Value;

/// Everything a matched route asks of the request path besides its
/// destinations.
#[derive(Clone, Debug, Default)]
pub struct RoutePolicy {
    pub fault: Option<Fault>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub rewrite: Option<Rewrite>,
    /// Istio's `HTTPRedirect`, as the model summarises it.
    pub redirect: Option<Value>,
    pub direct_response: Option<(StatusCode, Bytes)>,
}

/// `HTTPRewrite`: the path part replaces the prefix the route matched on
/// (the whole path for exact and regex matches); `authority` replaces Host.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rewrite {
    pub uri: Option<String>,
    pub authority: Option<String>,
    /// Per match entry of the route: the `uri.prefix` it matched on, `None`
    /// for exact/regex URI matches (whole path replaced). Routes or entries
    /// without a URI match behave as prefix `/`, as in Envoy.
    pub match_prefixes: Vec<Option<String>>,
}

impl Rewrite {
    /// The path and query sent upstream for `path_and_query`, when the
    /// route's match entry `match_index` held.
    pub fn apply(&self, path_and_query: &str, match_index: Option<usize>) -> Option<String> {
        let uri = self.uri.as_deref()?;
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let prefix = match match_index.and_then(|i| self.match_prefixes.get(i)) {
            Some(Some(prefix)) => Some(prefix.as_str()),
            Some(None) => None,
            None => Some("/"),
        };
        let mut out = match prefix.and_then(|p| path.strip_prefix(p)) {
            Some(rest) => format!("{uri}{rest}"),
            None => uri.to_string(),
        };
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        Some(out)
    }
}

impl RoutePolicy {
    /// The policy of sidecar traffic no VirtualService routes.
    pub fn service_default() -> RoutePolicy {
        RoutePolicy {
            retry: RetryPolicy::from_route(None),
            ..RoutePolicy::default()
        }
    }

    pub fn compile(route: &CompiledRoute) -> RoutePolicy {
        let spec = &route.spec;
        let rewrite = spec.rewrite.as_ref().map(|r| Rewrite {
            uri: r.uri.clone(),
            authority: r.authority.clone(),
            match_prefixes: spec
                .matches
                .iter()
                .map(|m| match &m.uri {
                    Some(u) => u.prefix.clone(),
                    None => Some("/".to_string()),
                })
                .collect(),
        });
        let direct_response = spec.direct_response.as_ref().map(|d| {
            let status = u16::try_from(d.status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let body = d
                .body
                .as_ref()
                .and_then(|b| b.string.clone())
                .unwrap_or_default();
            (status, Bytes::from(body))
        });
        RoutePolicy {
            fault: route.fault.as_ref().and_then(Fault::parse),
            retry: RetryPolicy::from_route(route.retries.as_ref()),
            timeout: route
                .timeout_ms
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            rewrite,
            redirect: route.redirect.clone(),
            direct_response,
        }
    }
}

/// Istio's default when a route sets no `retries`: two retries on
/// connection failures, refused streams and 503s.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// How the forwarding loop retries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    pub on_5xx: bool,
    pub on_gateway_error: bool,
    pub on_connect_failure: bool,
    pub on_reset: bool,
    pub on_retriable_4xx: bool,
    /// `retriable-status-codes` and bare codes in `retryOn`.
    pub status_codes: Vec<u16>,
}

impl RetryPolicy {
    pub fn from_route(retries: Option<&Retries>) -> RetryPolicy {
        match retries {
            Some(r) => Self::parse(
                r.attempts,
                r.per_try_timeout_ms.map(Duration::from_millis),
                r.retry_on.as_deref().unwrap_or(DEFAULT_RETRY_ON),
            ),
            None => Self::parse(2, None, DEFAULT_RETRY_ON),
        }
    }

    fn parse(attempts: u32, per_try_timeout: Option<Duration>, retry_on: &str) -> RetryPolicy {
        let mut p = RetryPolicy {
            attempts,
            per_try_timeout,
            on_5xx: false,
            on_gateway_error: false,
            on_connect_failure: false,
            on_reset: false,
            on_retriable_4xx: false,
            status_codes: Vec::new(),
        };
        for cond in retry_on.split(',').map(str::trim) {
            match cond {
                "5xx" => p.on_5xx = true,
                "gateway-error" => p.on_gateway_error = true,
                "connect-failure" => p.on_connect_failure = true,
                "reset" | "reset-before-request" | "refused-stream" | "cancelled" => {
                    p.on_reset = true
                }
                "retriable-4xx" => p.on_retriable_4xx = true,
                // gRPC's `unavailable` maps to HTTP 503 for HTTP/1.1 upstreams.
                "unavailable" | "retriable-status-codes" => {
                    if !p.status_codes.contains(&503) {
                        p.status_codes.push(503)
                    }
                }
                code => {
                    if let Ok(c) = code.parse::<u16>() {
                        p.status_codes.push(c);
                    }
                }
            }
        }
        p
    }

    /// Whether a response with `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        (self.on_5xx && status >= 500)
            || (self.on_gateway_error && matches!(status, 502..=504))
            || (self.on_retriable_4xx && status == 409)
            || self.status_codes.contains(&status)
    }

    /// Envoy's backoff: 25 ms base, doubling, full jitter, capped at 250 ms.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = (25u64 << retry.min(4)).min(250);
        Duration::from_millis(rand::rng().random_range(0..=cap))
    }
}

/// The fault a route injects, as Istio's `HTTPFaultInjection`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fault {
    pub delay: Option<(Duration, f64)>,
    pub abort: Option<(u16, f64)>,
}

impl Fault {
    /// Reads `{delay: {fixedDelay, percentage: {value}}, abort: {httpStatus, percentage}}`
    /// (and the deprecated integer `percent`); `None` when nothing usable.
    pub fn parse(value: &Value) -> Option<Fault> {
        let delay = value.get("delay").and_then(|d| {
            let fixed = d.get("fixedDelay")?.as_str()?;
            Some((parse_duration(fixed)?, percentage(d)))
        });
        let abort = value.get("abort").and_then(|a| {
            let status = a.get("httpStatus")?.as_u64()?;
            let status = u16::try_from(status)
                .ok()
                .filter(|s| (200..600).contains(s))?;
            Some((status, percentage(a)))
        });
        if delay.is_none() && abort.is_none() {
            return None;
        }
        Some(Fault { delay, abort })
    }
}

/// Whether an event with probability `percent` (0–100) happens this time.
pub fn roll(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && rand::rng().random_range(0.0..100.0) < percent)
}

/// No percentage given: every request, which is what someone writing a
/// bare `abort: {httpStatus: 503}` expects to see.
fn percentage(v: &Value) -> f64 {
    if let Some(p) = v.get("percentage") {
        return p.get("value").and_then(Value::as_f64).unwrap_or(0.0);
    }
    v.get("percent").and_then(Value::as_f64).unwrap_or(100.0)
}

/// Istio durations (`5s`, `0.5s`, `100ms`), parsed by the model.
fn parse_duration(s: &str) -> Option<Duration> {
    loupe_model::duration::parse_duration(s).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn retry_on_conditions_parse() {
        let p = RetryPolicy::from_route(Some(&Retries {
            attempts: 3,
            per_try_timeout_ms: Some(200),
            retry_on: Some("gateway-error,connect-failure,418".into()),
        }));
        assert_eq!(p.attempts, 3);
        assert!(p.retries_status(503) && p.retries_status(418));
        assert!(!p.retries_status(500));
        assert!(p.on_connect_failure && !p.on_reset);
        let default = RetryPolicy::from_route(None);
        assert_eq!(default.attempts, 2);
        assert!(default.retries_status(503) && !default.retries_status(500));
    }

    #[test]
    fn rewrites_replace_the_matched_prefix_and_keep_the_query() {
        let r = Rewrite {
            uri: Some("/v2/".into()),
            authority: None,
            match_prefixes: vec![Some("/api/".into()), None],
        };
        assert_eq!(
            r.apply("/api/users?x=1", Some(0)).as_deref(),
            Some("/v2/users?x=1")
        );
        assert_eq!(r.apply("/exact", Some(1)).as_deref(), Some("/v2/"));
        assert_eq!(r.apply("/any", None).as_deref(), Some("/v2/any"));
    }

    #[test]
    fn faults_parse_as_istio_writes_them() {
        let f = Fault::parse(&json!({
            "delay": {"fixedDelay": "1.5s", "percentage": {"value": 10.0}},
            "abort": {"httpStatus": 503}
        }))
        .expect("a fault");
        assert_eq!(f.delay, Some((Duration::from_millis(1500), 10.0)));
        assert_eq!(f.abort, Some((503, 100.0)));
        assert!(Fault::parse(&json!({"abort": {"httpStatus": 42}})).is_none());
        assert!(roll(100.0) && !roll(0.0));
    }
}
