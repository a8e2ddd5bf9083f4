//! JSON Web Key Sets for RequestAuthentication `jwksUri`s. The control
//! plane fetches them (as istiod does) and pushes them with every snapshot,
//! so proxies fetch nothing and need no route to the issuer. A set is
//! fetched when a config names its URI for the first time; a fetch that
//! fails keeps the last good set for that URI, and a URI that never
//! answered is left out — the proxies then answer its issuer's tokens 401.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use loupe_model::Resource;

/// Istio's default `jwtRules[].timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS larger than this is refused (keys are small).
const MAX_BYTES: usize = 256 * 1024;

#[derive(Default)]
pub struct JwksFetcher {
    client: reqwest::Client,
    cache: Mutex<HashMap<String, String>>,
}

impl JwksFetcher {
    /// The sets of every `jwksUri` in `resources` (fetching the new ones).
    pub async fn for_resources(&self, resources: &[Resource]) -> HashMap<String, String> {
        let mut wanted: BTreeSet<(String, Duration)> = BTreeSet::new();
        for r in resources {
            if let Resource::RequestAuthentication(ra) = r {
                for rule in &ra.spec.jwt_rules {
                    if rule.jwks.is_none()
                        && let Some(uri) = &rule.jwks_uri
                    {
                        let timeout = rule
                            .timeout
                            .as_deref()
                            .and_then(|t| loupe_model::duration::parse_duration(t).ok())
                            .unwrap_or(DEFAULT_TIMEOUT);
                        wanted.insert((uri.clone(), timeout));
                    }
                }
            }
        }
        let mut out = HashMap::new();
        for (uri, timeout) in wanted {
            let cached = self.lock().get(&uri).cloned();
            let set = match cached {
                Some(set) => Some(set),
                None => match self.fetch(&uri, timeout).await {
                    Ok(set) => {
                        self.lock().insert(uri.clone(), set.clone());
                        Some(set)
                    }
                    Err(error) => {
                        tracing::warn!(%uri, %error, "cannot fetch the JWKS: tokens of its issuer get 401");
                        None
                    }
                },
            };
            if let Some(set) = set {
                out.insert(uri, set);
            }
        }
        out
    }

    async fn fetch(&self, uri: &str, timeout: Duration) -> Result<String, String> {
        let response = self
            .client
            .get(uri)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_BYTES {
            return Err(format!("{} bytes, more than {MAX_BYTES}", body.len()));
        }
        let text = String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8".to_string())?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        if !json["keys"].is_array() {
            return Err("not a JWKS (no \"keys\" array)".into());
        }
        Ok(text)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
