//! The five Istio kinds Loupe understands, and parsing of multi-document YAML
//! into them. Documents of other kinds (Service, Deployment, …) are skipped.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::analyze::Diagnostic;
use crate::meta::ObjectMeta;
use crate::networking::{DestinationRule, Gateway, VirtualService};
use crate::security::{AuthorizationPolicy, PeerAuthentication};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Gateway,
    VirtualService,
    DestinationRule,
    PeerAuthentication,
    AuthorizationPolicy,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Gateway,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gateway => "Gateway",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
        }
    }

    /// Accepts the kind as Istio spells it, case-insensitively, plus kubectl's
    /// short names (`vs`, `dr`, `gw`, `pa`, `ap`) and plurals.
    pub fn parse(s: &str) -> Option<Kind> {
        let l = s.to_ascii_lowercase();
        Some(match l.trim_end_matches('s') {
            "gateway" | "gw" => Kind::Gateway,
            "virtualservice" | "v" => Kind::VirtualService,
            "destinationrule" | "dr" => Kind::DestinationRule,
            "peerauthentication" | "pa" => Kind::PeerAuthentication,
            "authorizationpolicy" | "authorizationpolicie" | "ap" => Kind::AuthorizationPolicy,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Kind/namespace/name`, the way diagnostics and the console name a resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// One Istio resource. Serializes as the whole Kubernetes object
/// (`apiVersion`, `kind`, `metadata`, `spec`), so JSON and YAML forms are
/// what Istio's tooling reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Gateway(Gateway),
    VirtualService(VirtualService),
    DestinationRule(DestinationRule),
    PeerAuthentication(PeerAuthentication),
    AuthorizationPolicy(AuthorizationPolicy),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Gateway(_) => Kind::Gateway,
            Resource::VirtualService(_) => Kind::VirtualService,
            Resource::DestinationRule(_) => Kind::DestinationRule,
            Resource::PeerAuthentication(_) => Kind::PeerAuthentication,
            Resource::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Resource::Gateway(r) => &r.metadata,
            Resource::VirtualService(r) => &r.metadata,
            Resource::DestinationRule(r) => &r.metadata,
            Resource::PeerAuthentication(r) => &r.metadata,
            Resource::AuthorizationPolicy(r) => &r.metadata,
        }
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey {
            kind: self.kind(),
            namespace: self.meta().namespace().to_string(),
            name: self.meta().name.clone(),
        }
    }
}

/// What parsing one file gives: the resources that parsed, and a diagnostic
/// for every document that did not (and for every unknown field).
#[derive(Clone, Debug, Default)]
pub struct ParsedFile {
    pub resources: Vec<Resource>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses every document of a (multi-document) YAML or JSON text. Never
/// panics; `source` names the input in diagnostics (a file path, `stdin`, …).
pub fn parse_documents(source: &str, text: &str) -> ParsedFile {
    crate::parse::parse_documents(source, text)
}

/// Prints resources back as multi-document YAML that parses to the same resources.
pub fn to_yaml(resources: &[Resource]) -> String {
    crate::parse::to_yaml(resources)
}
