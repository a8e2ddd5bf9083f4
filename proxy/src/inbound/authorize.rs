//! The inbound authorization step: Istio's AuthorizationPolicies of the
//! current config, evaluated by `loupe_model::authz::Authorizer` (compiled
//! once per snapshot) against the caller and the request.
//!
//! The caller's principal and namespace come only from its mesh mTLS
//! certificate ([`PeerIdentity`], set by the listener); a plaintext caller
//! has neither, exactly as Istio sees it, so principal-based rules deny it.
//! No header can set them.

use std::net::SocketAddr;

use loupe_model::authz::{Authorizer, Decision};
use loupe_model::request::{Destination, HttpAttributes, Source};

use crate::context::ProxyContext;
use crate::tls::PeerIdentity;

/// Why a request was refused, for the 403 body and the log.
pub struct Denied {
    pub policy: Option<String>,
}

pub fn authorize(
    ctx: &ProxyContext,
    authorizer: &Authorizer,
    parts: &http::request::Parts,
    peer: SocketAddr,
    identity: Option<&PeerIdentity>,
    jwt: Option<loupe_model::request::Jwt>,
    port: u16,
) -> Result<(), Denied> {
    let request = loupe_model::Request {
        source: Source {
            principal: identity.map(|p| p.id.principal()),
            namespace: identity.map(|p| p.id.namespace.clone()),
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
            auth: jwt,
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
