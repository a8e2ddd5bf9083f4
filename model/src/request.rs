//! A request as the data path sees it: who sends it, to which workload, its
//! HTTP attributes and the JWT it authenticated with. It is the
//! `REQUEST.json` of `loupe route` and `loupe authz check`, and what the
//! proxy fills in per request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    pub source: Source,
    pub destination: Destination,
    pub request: HttpAttributes,
}

/// The calling workload. `principal` and `namespace` are absent for plaintext.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Source {
    /// SPIFFE identity without the scheme: `cluster.local/ns/default/sa/frontend`.
    pub principal: Option<String>,
    pub namespace: Option<String>,
    pub ip: Option<String>,
    /// Labels of the calling workload (VirtualService `sourceLabels`).
    pub labels: BTreeMap<String, String>,
}

/// The called workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Destination {
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub ip: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpAttributes {
    pub method: Option<String>,
    pub path: Option<String>,
    /// The `Host`/`:authority`, possibly with a port.
    pub host: Option<String>,
    pub scheme: Option<String>,
    /// Header names are matched case-insensitively; store them lower-case.
    pub headers: BTreeMap<String, String>,
    /// The JWT the request carried, once verified against a
    /// RequestAuthentication rule (`request.auth.*` in Istio's terms);
    /// absent for a request without a (valid) token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Jwt>,
}

/// A verified JWT, as authorization sees it: its claims. The request
/// principal, audiences and presenter are claims too (`iss`/`sub`, `aud`,
/// `azp`), read as Istio's JWT filter reads them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Jwt {
    /// The token's payload: `{"iss": …, "sub": …, "groups": [...], …}`.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl Jwt {
    pub fn from_claims(claims: serde_json::Value) -> Jwt {
        Jwt {
            claims: match claims {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
        }
    }

    /// `iss/sub`, the request principal (`requestPrincipals`,
    /// `request.auth.principal`); absent unless both claims are strings.
    pub fn principal(&self) -> Option<String> {
        let iss = self.claims.get("iss")?.as_str()?;
        let sub = self.claims.get("sub")?.as_str()?;
        Some(format!("{iss}/{sub}"))
    }

    /// `aud`: one string or a list of strings (`request.auth.audiences`).
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(list)) => {
                list.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => Vec::new(),
        }
    }

    /// `azp`, the authorized presenter (`request.auth.presenter`).
    pub fn presenter(&self) -> Option<&str> {
        self.claims.get("azp")?.as_str()
    }

    /// A claim by path: `["groups"]` for `request.auth.claims[groups]`,
    /// `["realm", "roles"]` for `request.auth.claims[realm][roles]`.
    pub fn claim<S: AsRef<str>>(&self, path: &[S]) -> Option<&serde_json::Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.claims.get(first.as_ref())?;
        for key in rest {
            value = value.as_object()?.get(key.as_ref())?;
        }
        Some(value)
    }
}
