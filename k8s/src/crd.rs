//! Istio's CustomResourceDefinitions, generated from loupe-model's spec types.
//!
//! Each kind is a `#[derive(CustomResource)]` over a transparent wrapper of
//! loupe-model's spec, so the schema the API server enforces is the schema
//! Loupe parses, and the typed object (`VirtualServiceCrd`, …) is what the
//! cluster-mode store reads. Names, short names, categories and printer
//! columns are Istio's. The derive makes one version; [`crds`] serves every
//! version Istio serves with the same schema (as Istio's own CRDs do), `v1`
//! being the storage version.
//!
//! Two changes to what schemars derives, both so that the API server stores
//! exactly what the user wrote: `default` values are removed (Istio's CRDs
//! have none; a default would be written into every object), and `status` keeps
//! unknown fields (Istio's status carries more than Loupe writes).
//!
//! `Sidecar` has no loupe-model type yet: its `spec` keeps unknown fields
//! (`x-kubernetes-preserve-unknown-fields`) instead of a structural schema.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionVersion,
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResource;
use kube::core::CustomResourceExt;
use loupe_model::networking::{
    DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec, WorkloadEntrySpec,
};
use loupe_model::security::{
    AuthorizationPolicySpec, PeerAuthenticationSpec, RequestAuthenticationSpec,
};
use loupe_model::telemetry::TelemetrySpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Istio's `status` as istiod writes it: conditions, the analysis messages
/// of `status.validationMessages`, and the generation they describe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct IstioStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<IstioCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_messages: Vec<ValidationMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One entry of `status.conditions` (`Reconciled`, `Ready`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IstioCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// `status.validationMessages[]`: Istio's `AnalysisMessageBase` shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationMessage {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<ValidationMessageType>,
    /// `ERROR`, `WARNING` or `INFO`.
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationMessageType {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `Sidecar`'s spec, kept as written: loupe-model does not model the kind yet,
/// so the schema preserves unknown fields rather than guessing a structure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SidecarSpec(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for SidecarSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SidecarSpec".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// One Istio kind: the typed object `$root` (what `kube::Api` reads) over
/// loupe-model's `$spec`, and its CRD's names and printer columns.
macro_rules! istio_kind {
    (
        $root:ident = $root_name:literal, $wrapper:ident($spec:ty),
        group = $group:literal, kind = $kind:literal, categories = [$($cat:literal),*],
        shortnames = [$($short:literal),*], description = $desc:literal,
        columns = [$([$name:literal, $ty:literal, $path:literal, $cdesc:literal]),*]
    ) => {
        #[doc = $desc]
        #[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[kube(
            group = $group,
            version = "v1",
            kind = $kind,
            root = $root_name,
            namespaced,
            status = "IstioStatus",
            derive = "PartialEq",
            doc = $desc,
            $(shortname = $short,)*
            $(category = $cat,)*
            $(printcolumn(name = $name, type_ = $ty, description = $cdesc, json_path = $path),)*
        )]
        #[serde(transparent)]
        pub struct $wrapper(pub $spec);
    };
}

istio_kind!(
    GatewayCrd = "GatewayCrd",
    GatewayCrdSpec(GatewaySpec),
    group = "networking.istio.io",
    kind = "Gateway",
    categories = ["istio-io", "networking-istio-io"],
    shortnames = ["gw"],
    description = "Configuration affecting edge load balancer. See more details at: https://istio.io/docs/reference/config/networking/gateway.html",
    columns = []
);
istio_kind!(
    VirtualServiceCrd = "VirtualServiceCrd",
    VirtualServiceCrdSpec(VirtualServiceSpec),
    group = "networking.istio.io",
    kind = "VirtualService",
    categories = ["istio-io", "networking-istio-io"],
    shortnames = ["vs"],
    description = "Configuration affecting label/content routing, sni routing, etc. See more details at: https://istio.io/docs/reference/config/networking/virtual-service.html",
    columns = [
        [
            "Gateways",
            "string",
            ".spec.gateways",
            "The names of gateways and sidecars that should apply these routes"
        ],
        [
            "Hosts",
            "string",
            ".spec.hosts",
            "The destination hosts to which traffic is being sent"
        ]
    ]
);
istio_kind!(
    DestinationRuleCrd = "DestinationRuleCrd",
    DestinationRuleCrdSpec(DestinationRuleSpec),
    group = "networking.istio.io",
    kind = "DestinationRule",
    categories = ["istio-io", "networking-istio-io"],
    shortnames = ["dr"],
    description = "Configuration affecting load balancing, outlier detection, etc. See more details at: https://istio.io/docs/reference/config/networking/destination-rule.html",
    columns = [[
        "Host",
        "string",
        ".spec.host",
        "The name of a service from the service registry"
    ]]
);
istio_kind!(
    ServiceEntryCrd = "ServiceEntryCrd",
    ServiceEntryCrdSpec(ServiceEntrySpec),
    group = "networking.istio.io",
    kind = "ServiceEntry",
    categories = ["istio-io", "networking-istio-io"],
    shortnames = ["se"],
    description = "Configuration affecting service registry. See more details at: https://istio.io/docs/reference/config/networking/service-entry.html",
    columns = [
        [
            "Hosts",
            "string",
            ".spec.hosts",
            "The hosts associated with the ServiceEntry"
        ],
        [
            "Location",
            "string",
            ".spec.location",
            "Whether the service is external to the mesh or part of the mesh (MESH_EXTERNAL or MESH_INTERNAL)"
        ],
        [
            "Resolution",
            "string",
            ".spec.resolution",
            "Service resolution mode for the hosts (NONE, STATIC, or DNS)"
        ]
    ]
);
istio_kind!(
    WorkloadEntryCrd = "WorkloadEntryCrd",
    WorkloadEntryCrdSpec(WorkloadEntrySpec),
    group = "networking.istio.io",
    kind = "WorkloadEntry",
    categories = ["istio-io", "networking-istio-io"],
    shortnames = ["we"],
    description = "Configuration affecting VMs onboarded into the mesh. See more details at: https://istio.io/docs/reference/config/networking/workload-entry.html",
    columns = [[
        "Address",
        "string",
        ".spec.address",
        "Address associated with the network endpoint."
    ]]
);
istio_kind!(
    SidecarCrd = "SidecarCrd",
    SidecarCrdSpec(SidecarSpec),
    group = "networking.istio.io",
    kind = "Sidecar",
    categories = ["istio-io", "networking-istio-io"],
    shortnames = [],
    description = "Configuration affecting network reachability of a sidecar. See more details at: https://istio.io/docs/reference/config/networking/sidecar.html",
    columns = []
);
istio_kind!(
    PeerAuthenticationCrd = "PeerAuthenticationCrd",
    PeerAuthenticationCrdSpec(PeerAuthenticationSpec),
    group = "security.istio.io",
    kind = "PeerAuthentication",
    categories = ["istio-io", "security-istio-io"],
    shortnames = ["pa"],
    description = "Peer authentication configuration for workloads. See more details at: https://istio.io/docs/reference/config/security/peer_authentication.html",
    columns = [[
        "Mode",
        "string",
        ".spec.mtls.mode",
        "Defines the mTLS mode used for peer authentication."
    ]]
);
istio_kind!(
    RequestAuthenticationCrd = "RequestAuthenticationCrd",
    RequestAuthenticationCrdSpec(RequestAuthenticationSpec),
    group = "security.istio.io",
    kind = "RequestAuthentication",
    categories = ["istio-io", "security-istio-io"],
    shortnames = ["ra"],
    description = "Request authentication configuration for workloads. See more details at: https://istio.io/docs/reference/config/security/request_authentication.html",
    columns = []
);
istio_kind!(
    AuthorizationPolicyCrd = "AuthorizationPolicyCrd",
    AuthorizationPolicyCrdSpec(AuthorizationPolicySpec),
    group = "security.istio.io",
    kind = "AuthorizationPolicy",
    categories = ["istio-io", "security-istio-io"],
    shortnames = ["ap"],
    description = "Configuration for access control on workloads. See more details at: https://istio.io/docs/reference/config/security/authorization-policy.html",
    columns = [["Action", "string", ".spec.action", "The operation to take."]]
);

istio_kind!(
    TelemetryCrd = "TelemetryCrd",
    TelemetryCrdSpec(TelemetrySpec),
    group = "telemetry.istio.io",
    kind = "Telemetry",
    categories = ["istio-io", "telemetry-istio-io"],
    shortnames = ["telemetry"],
    description = "Telemetry configuration for workloads. See more details at: https://istio.io/docs/reference/config/telemetry.html",
    columns = []
);

/// Where `kubectl get`'s AGE column goes among a kind's columns, as in
/// Istio's CRDs (kinds with no columns at all get kubectl's default AGE).
#[derive(Clone, Copy)]
enum Age {
    None,
    First,
    Last,
}

/// `kubectl get`'s AGE column, described as Istio's CRDs describe it.
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when \
    this object was created. It is not guaranteed to be set in happens-before order across \
    separate operations. Clients may not set this value. It is represented in RFC3339 form and is \
    in UTC. Populated by the system. Read-only. Null for lists. More info: \
    https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Every CRD Loupe reads, in a stable order (networking, security, telemetry).
pub fn crds() -> Vec<CustomResourceDefinition> {
    let networking = ["v1", "v1beta1", "v1alpha3"];
    let security = ["v1", "v1beta1"];
    vec![
        finish(GatewayCrd::crd(), &networking, Age::None),
        finish(VirtualServiceCrd::crd(), &networking, Age::Last),
        finish(DestinationRuleCrd::crd(), &networking, Age::Last),
        finish(ServiceEntryCrd::crd(), &networking, Age::Last),
        finish(WorkloadEntryCrd::crd(), &networking, Age::First),
        finish(SidecarCrd::crd(), &networking, Age::None),
        finish(PeerAuthenticationCrd::crd(), &security, Age::Last),
        finish(RequestAuthenticationCrd::crd(), &security, Age::None),
        finish(AuthorizationPolicyCrd::crd(), &security, Age::Last),
        finish(TelemetryCrd::crd(), &["v1", "v1alpha1"], Age::First),
    ]
}

/// The derived (single-version) CRD made Istio's: every version served with
/// the same schema, `v1` stored, defaults stripped, the AGE column placed.
fn finish(
    mut crd: CustomResourceDefinition,
    versions: &[&str],
    age: Age,
) -> CustomResourceDefinition {
    let Some(mut v1) = crd.spec.versions.pop() else {
        return crd;
    };
    if let Some(schema) = v1
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
    {
        strip_defaults(schema);
    }
    let columns = v1.additional_printer_columns.get_or_insert_with(Vec::new);
    let age_column = CustomResourceColumnDefinition {
        name: "Age".into(),
        type_: "date".into(),
        description: Some(AGE_DESCRIPTION.into()),
        json_path: ".metadata.creationTimestamp".into(),
        ..Default::default()
    };
    match age {
        Age::None => {}
        Age::First => columns.insert(0, age_column),
        Age::Last => columns.push(age_column),
    }
    if columns.is_empty() {
        v1.additional_printer_columns = None;
    }
    crd.spec.versions = versions
        .iter()
        .map(|name| CustomResourceDefinitionVersion {
            name: (*name).to_string(),
            served: true,
            storage: *name == "v1",
            ..v1.clone()
        })
        .collect();
    crd
}

/// Removes `default` from every level of a schema (see the module doc).
fn strip_defaults(schema: &mut JSONSchemaProps) {
    schema.default = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_defaults(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        strip_defaults(items);
    }
    if let Some(JSONSchemaPropsOrArray::Schemas(items)) = schema.items.as_mut() {
        items.iter_mut().for_each(strip_defaults);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        strip_defaults(extra);
    }
    for list in [&mut schema.one_of, &mut schema.any_of, &mut schema.all_of] {
        list.iter_mut().flatten().for_each(strip_defaults);
    }
}
