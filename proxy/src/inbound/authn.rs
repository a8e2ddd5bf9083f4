//! The inbound authentication step: Istio's RequestAuthentication (Envoy's
//! `jwt_authn` filter as Istio configures it). The JWT rules that select
//! this workload are compiled once per snapshot, with their keys from the
//! inline `jwks` or the JWKS the control plane fetched for `jwksUri`.
//!
//! Per request, as Istio documents it: a request without a token passes
//! (an AuthorizationPolicy on `requestPrincipals` decides); a token that
//! fails — unknown issuer, bad signature, expired, not yet valid, wrong
//! audience — gets 401; a valid token's claims become `request.auth.*` for
//! authorization, and its header is removed unless `forwardOriginalToken`,
//! with `outputPayloadToHeader` and `outputClaimToHeaders` applied.

use std::collections::HashMap;

use base64::Engine as _;
use http::HeaderName;
use http::header::HeaderValue;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use loupe_model::request::Jwt;
use loupe_model::security::JwtRule;

/// Envoy's default clock skew for `exp`/`nbf`.
const LEEWAY_SECS: u64 = 60;

/// Where a rule looks for its token.
#[derive(Clone, Debug, PartialEq)]
enum Location {
    Header { name: HeaderName, prefix: String },
    Param(String),
    Cookie(String),
}

struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

struct CompiledRule {
    issuer: String,
    audiences: Vec<String>,
    keys: Vec<Key>,
    /// Why the rule has no keys (JWKS missing or unusable), for the log.
    keys_error: Option<String>,
    locations: Vec<Location>,
    forward_original_token: bool,
    payload_header: Option<HeaderName>,
    claim_headers: Vec<(HeaderName, Vec<String>)>,
}

/// The RequestAuthentication rules of one workload, compiled.
#[derive(Default)]
pub struct Authenticator {
    rules: Vec<CompiledRule>,
}

/// Why a token was refused (the 401's body, as Envoy words it).
#[derive(Debug, PartialEq, Eq)]
pub struct Unauthenticated(pub String);

impl Authenticator {
    /// `jwks`: fetched JWKS by URI (the snapshot's).
    pub fn compile(rules: &[&JwtRule], jwks: &HashMap<String, String>) -> Authenticator {
        Authenticator {
            rules: rules.iter().map(|r| compile_rule(r, jwks)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Authenticates the request's token, if it carries one; on success
    /// rewrites the headers as the rule says.
    pub fn authenticate(
        &self,
        parts: &mut http::request::Parts,
    ) -> Result<Option<Jwt>, Unauthenticated> {
        let mut found: Option<(usize, String, Location)> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            for loc in &rule.locations {
                if let Some(token) = extract(parts, loc) {
                    let issuer = token_issuer(&token);
                    // The rule whose issuer the token names wins; otherwise
                    // remember the token to refuse it below.
                    if issuer.as_deref() == Some(rule.issuer.as_str()) {
                        found = Some((i, token, loc.clone()));
                        break;
                    }
                    if found.is_none() {
                        found = Some((usize::MAX, token, loc.clone()));
                    }
                }
            }
            if matches!(found, Some((j, _, _)) if j == i) {
                break;
            }
        }
        let Some((index, token, location)) = found else {
            return Ok(None);
        };
        let Some(rule) = self.rules.get(index) else {
            return Err(Unauthenticated("Jwt issuer is not configured".into()));
        };
        let claims = verify(rule, &token)?;
        if !rule.forward_original_token
            && let Location::Header { name, .. } = &location
        {
            parts.headers.remove(name);
        }
        if let Some(h) = &rule.payload_header
            && let Some(payload) = token.split('.').nth(1)
            && let Ok(v) = HeaderValue::from_str(payload)
        {
            parts.headers.insert(h.clone(), v);
        }
        let jwt = Jwt::from_claims(claims);
        for (header, path) in &rule.claim_headers {
            let value = match jwt.claim(path) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                Some(other) => other.to_string(),
                None => continue,
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                parts.headers.insert(header.clone(), v);
            }
        }
        Ok(Some(jwt))
    }
}

fn compile_rule(rule: &JwtRule, jwks: &HashMap<String, String>) -> CompiledRule {
    let source = match (&rule.jwks, &rule.jwks_uri) {
        (Some(inline), _) => Ok(inline.clone()),
        (None, Some(uri)) => jwks
            .get(uri)
            .cloned()
            .ok_or_else(|| format!("the JWKS of {uri} has not been fetched")),
        (None, None) => Err("the rule names no jwks or jwksUri".to_string()),
    };
    let (keys, keys_error) = match source.and_then(|json| parse_jwks(&json)) {
        Ok(keys) => (keys, None),
        Err(e) => {
            tracing::warn!(issuer = %rule.issuer, error = %e, "JWT rule without keys: its tokens get 401");
            (Vec::new(), Some(e))
        }
    };
    let mut locations: Vec<Location> = rule
        .from_headers
        .iter()
        .filter_map(|h| {
            Some(Location::Header {
                name: HeaderName::from_bytes(h.name.to_ascii_lowercase().as_bytes()).ok()?,
                prefix: h.prefix.clone().unwrap_or_default(),
            })
        })
        .collect();
    locations.extend(rule.from_params.iter().cloned().map(Location::Param));
    locations.extend(rule.from_cookies.iter().cloned().map(Location::Cookie));
    if locations.is_empty() {
        // Istio's defaults: `Authorization: Bearer …` and `?access_token=`.
        locations = vec![
            Location::Header {
                name: http::header::AUTHORIZATION,
                prefix: "Bearer ".into(),
            },
            Location::Param("access_token".into()),
        ];
    }
    CompiledRule {
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        keys,
        keys_error,
        locations,
        forward_original_token: rule.forward_original_token,
        payload_header: rule
            .output_payload_to_header
            .as_deref()
            .and_then(|h| HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).ok()),
        claim_headers: rule
            .output_claim_to_headers
            .iter()
            .filter_map(|c| {
                let name = HeaderName::from_bytes(c.header.to_ascii_lowercase().as_bytes()).ok()?;
                Some((name, c.claim.split('.').map(str::to_string).collect()))
            })
            .collect(),
    }
}

fn parse_jwks(json: &str) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let algorithms = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => vec![
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                vec![Algorithm::ES256, Algorithm::ES384]
            }
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => {
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            }
            _ => continue,
        };
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            key,
            algorithms,
        });
    }
    if keys.is_empty() {
        return Err("the JWKS holds no usable key".into());
    }
    Ok(keys)
}

fn extract(parts: &http::request::Parts, loc: &Location) -> Option<String> {
    match loc {
        Location::Header { name, prefix } => {
            let v = parts.headers.get(name)?.to_str().ok()?;
            let token = if prefix.is_empty() {
                v
            } else {
                v.strip_prefix(prefix.as_str())?
            };
            Some(token.trim().to_string()).filter(|t| !t.is_empty())
        }
        Location::Param(name) => parts.uri.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_string())
        }),
        Location::Cookie(name) => parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == name && !v.is_empty()).then(|| v.to_string())
            }),
    }
}

/// The `iss` of a token, read without verifying (to pick the rule).
fn token_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

fn verify(rule: &CompiledRule, token: &str) -> Result<serde_json::Value, Unauthenticated> {
    let fails = |why: &str| Unauthenticated(format!("Jwt verification fails: {why}"));
    if rule.keys.is_empty() {
        return Err(fails(
            rule.keys_error
                .as_deref()
                .unwrap_or("no keys for the issuer"),
        ));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| fails("malformed token"))?;
    let mut last = None;
    for key in rule
        .keys
        .iter()
        .filter(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
        .filter(|k| k.algorithms.contains(&header.alg))
    {
        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.set_issuer(&[rule.issuer.as_str()]);
        v.required_spec_claims.clear();
        v.validate_nbf = true;
        if rule.audiences.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&rule.audiences);
        }
        match jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &v) {
            Ok(data) => return Ok(data.claims),
            Err(e) => last = Some(e),
        }
    }
    use jsonwebtoken::errors::ErrorKind;
    Err(match last.as_ref().map(|e| e.kind()) {
        Some(ErrorKind::ExpiredSignature) => Unauthenticated("Jwt is expired".into()),
        Some(ErrorKind::ImmatureSignature) => Unauthenticated("Jwt not yet valid".into()),
        Some(ErrorKind::InvalidAudience) => {
            Unauthenticated("Audiences in Jwt are not allowed".into())
        }
        Some(ErrorKind::InvalidIssuer) => Unauthenticated("Jwt issuer is not configured".into()),
        Some(_) => fails("signature or claims invalid"),
        None => fails("no key of the JWKS matches the token's kid and alg"),
    })
}
