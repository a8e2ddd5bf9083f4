//! The Istio kinds Loupe understands, and parsing of multi-document YAML
//! into them. Documents of other kinds (Service, Deployment, …) are skipped.

use std::fmt;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml_ng::{Mapping, Value};

use crate::analyze::Diagnostic;
use crate::meta::ObjectMeta;
use crate::networking::{DestinationRule, Gateway, ServiceEntry, VirtualService, WorkloadEntry};
use crate::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use crate::telemetry::Telemetry;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Gateway,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    WorkloadEntry,
    PeerAuthentication,
    RequestAuthentication,
    AuthorizationPolicy,
    Telemetry,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Gateway,
        Kind::VirtualService,
        Kind::DestinationRule,
        Kind::ServiceEntry,
        Kind::WorkloadEntry,
        Kind::PeerAuthentication,
        Kind::RequestAuthentication,
        Kind::AuthorizationPolicy,
        Kind::Telemetry,
    ];

    /// The API group the kind belongs to.
    pub fn group(self) -> &'static str {
        match self {
            Kind::Gateway
            | Kind::VirtualService
            | Kind::DestinationRule
            | Kind::ServiceEntry
            | Kind::WorkloadEntry => "networking.istio.io",
            Kind::PeerAuthentication | Kind::RequestAuthentication | Kind::AuthorizationPolicy => {
                "security.istio.io"
            }
            Kind::Telemetry => "telemetry.istio.io",
        }
    }

    /// The API versions of [`Kind::group`] Istio serves for this kind.
    pub fn versions(self) -> &'static [&'static str] {
        match self.group() {
            "networking.istio.io" => &["v1", "v1beta1", "v1alpha3"],
            "telemetry.istio.io" => &["v1", "v1alpha1"],
            _ => &["v1", "v1beta1"],
        }
    }

    /// `group/v1`, the apiVersion printed when a resource carries none.
    pub fn default_api_version(self) -> String {
        format!("{}/v1", self.group())
    }

    /// The kind exactly as Istio spells it in `kind:` (case-sensitive).
    pub fn from_kind_field(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gateway => "Gateway",
            Kind::VirtualService => "VirtualService",
            Kind::DestinationRule => "DestinationRule",
            Kind::ServiceEntry => "ServiceEntry",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::Telemetry => "Telemetry",
        }
    }

    /// Accepts the kind as Istio spells it, case-insensitively, plus kubectl's
    /// short names (`vs`, `dr`, `gw`, `se`, `we`, `pa`, `ra`, `ap`) and plurals.
    pub fn parse(s: &str) -> Option<Kind> {
        let l = s.to_ascii_lowercase();
        Some(match l.trim_end_matches('s') {
            "gateway" | "gw" => Kind::Gateway,
            "virtualservice" | "v" => Kind::VirtualService,
            "destinationrule" | "dr" => Kind::DestinationRule,
            "serviceentry" | "serviceentrie" | "se" => Kind::ServiceEntry,
            "workloadentry" | "workloadentrie" | "we" => Kind::WorkloadEntry,
            "peerauthentication" | "pa" => Kind::PeerAuthentication,
            "requestauthentication" | "ra" => Kind::RequestAuthentication,
            "authorizationpolicy" | "authorizationpolicie" | "ap" => Kind::AuthorizationPolicy,
            "telemetry" | "telemetrie" => Kind::Telemetry,
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
// Resources are configuration, held once per snapshot, never per request:
// unboxed variants keep construction and matching simple for every crate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Gateway(Gateway),
    VirtualService(VirtualService),
    DestinationRule(DestinationRule),
    ServiceEntry(ServiceEntry),
    WorkloadEntry(WorkloadEntry),
    PeerAuthentication(PeerAuthentication),
    RequestAuthentication(RequestAuthentication),
    AuthorizationPolicy(AuthorizationPolicy),
    Telemetry(Telemetry),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Gateway(_) => Kind::Gateway,
            Resource::VirtualService(_) => Kind::VirtualService,
            Resource::DestinationRule(_) => Kind::DestinationRule,
            Resource::ServiceEntry(_) => Kind::ServiceEntry,
            Resource::WorkloadEntry(_) => Kind::WorkloadEntry,
            Resource::PeerAuthentication(_) => Kind::PeerAuthentication,
            Resource::RequestAuthentication(_) => Kind::RequestAuthentication,
            Resource::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Resource::Telemetry(_) => Kind::Telemetry,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Resource::Gateway(r) => &r.metadata,
            Resource::VirtualService(r) => &r.metadata,
            Resource::DestinationRule(r) => &r.metadata,
            Resource::ServiceEntry(r) => &r.metadata,
            Resource::WorkloadEntry(r) => &r.metadata,
            Resource::PeerAuthentication(r) => &r.metadata,
            Resource::RequestAuthentication(r) => &r.metadata,
            Resource::AuthorizationPolicy(r) => &r.metadata,
            Resource::Telemetry(r) => &r.metadata,
        }
    }

    /// The object as an ordered YAML value: `apiVersion`, `kind`, then the
    /// struct's own fields (`metadata`, `spec`, …).
    pub fn to_value(&self) -> Result<Value, serde_yaml_ng::Error> {
        let inner = match self {
            Resource::Gateway(r) => serde_yaml_ng::to_value(r)?,
            Resource::VirtualService(r) => serde_yaml_ng::to_value(r)?,
            Resource::DestinationRule(r) => serde_yaml_ng::to_value(r)?,
            Resource::ServiceEntry(r) => serde_yaml_ng::to_value(r)?,
            Resource::WorkloadEntry(r) => serde_yaml_ng::to_value(r)?,
            Resource::PeerAuthentication(r) => serde_yaml_ng::to_value(r)?,
            Resource::RequestAuthentication(r) => serde_yaml_ng::to_value(r)?,
            Resource::AuthorizationPolicy(r) => serde_yaml_ng::to_value(r)?,
            Resource::Telemetry(r) => serde_yaml_ng::to_value(r)?,
        };
        let kind = self.kind();
        let mut fields = match inner {
            Value::Mapping(m) => m,
            _ => Mapping::new(),
        };
        let api_version = fields
            .shift_remove("apiVersion")
            .unwrap_or_else(|| Value::String(kind.default_api_version()));
        fields.shift_remove("kind");
        let mut out = Mapping::with_capacity(fields.len() + 2);
        out.insert(Value::from("apiVersion"), api_version);
        out.insert(Value::from("kind"), Value::from(kind.as_str()));
        out.extend(fields);
        Ok(Value::Mapping(out))
    }

    /// Builds a resource from a whole Kubernetes object, dispatching on its
    /// `kind`. Unknown fields are ignored here; [`parse_documents`] reports them.
    pub fn from_value(value: Value) -> Result<Resource, serde_yaml_ng::Error> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| value_error("the object has no `kind`"))?;
        let kind = Kind::from_kind_field(kind).ok_or_else(|| {
            value_error(format!(
                "`kind: {kind}` is not one of {}",
                Kind::ALL.map(Kind::as_str).join(", ")
            ))
        })?;
        Ok(match kind {
            Kind::Gateway => Resource::Gateway(serde_yaml_ng::from_value(value)?),
            Kind::VirtualService => Resource::VirtualService(serde_yaml_ng::from_value(value)?),
            Kind::DestinationRule => Resource::DestinationRule(serde_yaml_ng::from_value(value)?),
            Kind::ServiceEntry => Resource::ServiceEntry(serde_yaml_ng::from_value(value)?),
            Kind::WorkloadEntry => Resource::WorkloadEntry(serde_yaml_ng::from_value(value)?),
            Kind::PeerAuthentication => {
                Resource::PeerAuthentication(serde_yaml_ng::from_value(value)?)
            }
            Kind::RequestAuthentication => {
                Resource::RequestAuthentication(serde_yaml_ng::from_value(value)?)
            }
            Kind::AuthorizationPolicy => {
                Resource::AuthorizationPolicy(serde_yaml_ng::from_value(value)?)
            }
            Kind::Telemetry => Resource::Telemetry(serde_yaml_ng::from_value(value)?),
        })
    }

    /// `apiVersion` as written (`networking.istio.io/v1beta1`, …).
    pub fn api_version(&self) -> &str {
        match self {
            Resource::Gateway(r) => &r.api_version,
            Resource::VirtualService(r) => &r.api_version,
            Resource::DestinationRule(r) => &r.api_version,
            Resource::ServiceEntry(r) => &r.api_version,
            Resource::WorkloadEntry(r) => &r.api_version,
            Resource::PeerAuthentication(r) => &r.api_version,
            Resource::RequestAuthentication(r) => &r.api_version,
            Resource::AuthorizationPolicy(r) => &r.api_version,
            Resource::Telemetry(r) => &r.api_version,
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

fn value_error(msg: impl fmt::Display) -> serde_yaml_ng::Error {
    <serde_yaml_ng::Error as serde::de::Error>::custom(msg)
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value()
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Resource::from_value(value).map_err(D::Error::custom)
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
