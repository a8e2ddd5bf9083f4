//! `GET /api/openapi.json`: the API as an OpenAPI document. Its paths are
//! collected by [`crate::api_routes`] from the handlers' `#[utoipa::path]`
//! attributes as the router is built, its schemas from `loupe-api`'s types.

use std::sync::OnceLock;

use axum::Json;
use utoipa::Modify;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Where the API is mounted; the document's paths include it.
pub const PREFIX: &str = "/api";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Loupe console API",
        description = "The console's JSON API: service graph, metrics over time, traces, Istio config and its history, \
                       canary weights, audit log, proxy status. Every route but login, logout and \
                       health needs the `loupe_session` cookie (with `X-CSRF-Token` on writes) or \
                       `Authorization: Bearer TOKEN`; errors are `{\"error\": \"...\"}`."
    ),
    modifiers(&Credentials),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "graph", description = "Kiali's service graph"),
        (name = "metrics", description = "an entity's traffic over time"),
        (name = "traces", description = "Jaeger-style trace search"),
        (name = "config", description = "Istio config, its revisions and the audit log"),
        (name = "canary", description = "VirtualService weights"),
        (name = "mesh", description = "proxies, the mesh's parts, the console's health"),
        (name = "events", description = "server-sent change notifications"),
        (name = "auth", description = "login, sessions, users"),
    )
)]
pub struct ApiDoc;

struct Credentials;

impl Modify for Credentials {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an API token (`loupe user token NAME`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The document, built once: paths under [`PREFIX`].
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, mut doc) = crate::api_routes().split_for_parts();
        let paths = std::mem::take(&mut doc.paths.paths);
        doc.paths.paths = paths
            .into_iter()
            .map(|(path, item)| (format!("{PREFIX}{path}"), item))
            .collect();
        doc
    })
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi_json() -> Json<&'static OpenApi> {
    Json(document())
}
