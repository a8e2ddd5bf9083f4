//! The inbound authorization step: Istio's AuthorizationPolicies of the
//! current config, evaluated by `loupe_model::authz::Authorizer` (compiled
//! once per snapshot) against the caller and the request.
//!
//! Until mTLS lands the caller is plaintext: it has no principal and no
//! namespace (the peer-metadata header is a claim, not an identity), exactly
//! as Istio sees a plaintext caller, so principal-based rules deny.

use std::net::SocketAddr;

use loupe_model::authz::{Authorizer, Decision};
use loupe_model::request::{Destination, HttpAttributes, Source};

use crate::context::ProxyContext;

/// Why a request was refused, for the 403 body and the log.
pub struct Denied {
    pub policy: Option<String>,
}

pub fn authorize(
    ctx: &ProxyContext,
    authorizer: &Authorizer,
    parts: &http::request::Parts,
    peer: SocketAddr,
    port: u16,
) -> Result<(), Denied> {
    let request = loupe_model::Request {
        source: Source {
            principal: None,
            namespace: None,
            ip: Some(peer.ip().to_string()),
            labels: Default::default(),
        },
        destination: Destination {
            namespace: Some(ctx.this.namespace.to_string()),
            labels: ctx.this.labels.clone(),
            port: Some(port),
            ip: None,
        },
        request: HttpAttributes {
            method: Some(parts.method.as_str().to_string()),
            path: parts.uri.path_and_query().map(|p| p.as_str().to_string()),
            host: parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string),
            scheme: Some("http".to_string()),
            headers: parts
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            auth: None,
        },
    };
    // `evaluate`, not `authorize`: the verdict without the text for people.
    let verdict = authorizer.evaluate(&request);
    match verdict.decision {
        Decision::Allow => Ok(()),
        Decision::Deny => Err(Denied {
            policy: verdict.policy.map(str::to_string),
        }),
    }
}
