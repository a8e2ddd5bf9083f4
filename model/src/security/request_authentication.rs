//! `RequestAuthentication` (security.istio.io v1beta1, v1), field for field
//! as Istio's API reference spells it: which JWTs a workload accepts, where
//! it finds them and what it does with their claims. Which policies apply
//! to a workload is [`crate::request_auth`]'s job; verifying signatures and
//! fetching JWKS is the proxy's and the control plane's.

use serde::{Deserialize, Serialize};

use super::selector::{PolicyTargetReference, WorkloadSelector};
use crate::meta::ObjectMeta;
use crate::serde_util::is_false;

fn default_api_version() -> String {
    super::authorization_policy::API_VERSION.to_string()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestAuthentication {
    /// Kept as written so printing gives back what was parsed.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: RequestAuthenticationSpec,
}

impl Default for RequestAuthentication {
    fn default() -> Self {
        RequestAuthentication {
            api_version: default_api_version(),
            metadata: ObjectMeta::default(),
            spec: RequestAuthenticationSpec::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestAuthenticationSpec {
    /// Absent: every workload of the namespace (of the mesh in the root
    /// namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_rules: Vec<JwtRule>,
}

/// `JWTRule`: one issuer whose tokens are accepted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct JwtRule {
    /// The `iss` the token must carry.
    #[serde(default)]
    pub issuer: String,
    /// Accepted `aud` values; empty: the service's own names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Where the public keys are fetched from (when `jwks` is not inline);
    /// absent: OpenID discovery from the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The JSON Web Key Set, inline, as a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// Absent (with `fromParams` and `fromCookies`): `Authorization: Bearer`
    /// and the `access_token` query parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JwtHeader>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Header to which the verified payload is written (base64url JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_payload_to_header: Option<String>,
    /// Keep the token in the request sent upstream (it is removed otherwise).
    #[serde(default, skip_serializing_if = "is_false")]
    pub forward_original_token: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// How long fetching `jwksUri` may take (absent: 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// `JWTHeader`: a header that carries the token, with the prefix before it
/// (`Bearer `).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct JwtHeader {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// `ClaimToHeader`: copy a claim of the verified token into a request header.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClaimToHeader {
    #[serde(default)]
    pub header: String,
    /// A top-level claim, or a nested one as `a.b`.
    #[serde(default)]
    pub claim: String,
}
