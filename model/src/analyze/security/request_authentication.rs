//! RequestAuthentication checks: what Istio's validation rejects (a rule
//! without issuer, a JWKS that does not parse, a jwksUri that is not an
//! http(s) URL, bad header names, bad timeouts) and what it accepts but
//! does not do what it seems to (the same issuer twice, jwksUri next to an
//! inline jwks, a policy without rules).

use std::collections::HashMap;

use super::{Report, selector};
use crate::analyze::Diagnostic;
use crate::duration::parse_duration;
use crate::host::is_fqdn;
use crate::resource::Resource;
use crate::security::{JwtRule, RequestAuthentication};

pub(super) fn check(r: &Resource, p: &RequestAuthentication, out: &mut Vec<Diagnostic>) {
    let mut report = Report {
        resource: r.key().to_string(),
        out,
    };
    let spec = &p.spec;
    selector(&mut report, spec.selector.as_ref());
    if spec.selector.is_some() && (spec.target_ref.is_some() || !spec.target_refs.is_empty()) {
        report.error(
            "spec.selector",
            "selector and targetRef/targetRefs are mutually exclusive: keep the selector for \
             sidecars, or targetRef(s) for gateways and waypoints",
        );
    }
    if spec.jwt_rules.is_empty() {
        report.warning(
            "spec.jwtRules",
            "the RequestAuthentication has no jwtRules, so it accepts no token and changes \
             nothing: add a rule with the issuer and its keys",
        );
    }
    let mut issuers: HashMap<&str, usize> = HashMap::new();
    for (i, rule) in spec.jwt_rules.iter().enumerate() {
        let path = format!("spec.jwtRules[{i}]");
        if rule.issuer.trim().is_empty() {
            report.error(
                format!("{path}.issuer"),
                "the JWT rule has no issuer: set it to the token's `iss` claim, e.g. \
                 https://accounts.google.com",
            );
        } else if let Some(first) = issuers.insert(rule.issuer.as_str(), i) {
            report.warning(
                format!("{path}.issuer"),
                format!(
                    "issuer {:?} also has spec.jwtRules[{first}]: a token is accepted when \
                     either rule's keys verify it, and then only that rule's audiences and \
                     outputs apply. Merge them into one rule",
                    rule.issuer
                ),
            );
            issuers.insert(rule.issuer.as_str(), first);
        }
        jwt_rule(&mut report, &path, rule);
    }
}

fn jwt_rule(report: &mut Report<'_>, path: &str, rule: &JwtRule) {
    for (k, aud) in rule.audiences.iter().enumerate() {
        if aud.is_empty() {
            report.error(
                format!("{path}.audiences[{k}]"),
                "empty audience: remove it, or write the `aud` value tokens must carry",
            );
        }
    }
    if let Some(uri) = &rule.jwks_uri
        && let Err(problem) = http_url(uri)
    {
        report.error(
            format!("{path}.jwksUri"),
            format!(
                "{uri:?} is not an http(s) URL: {problem}; write e.g. \
                 https://www.googleapis.com/oauth2/v3/certs"
            ),
        );
    }
    if let Some(jwks) = &rule.jwks {
        if let Err(problem) = jwks_json(jwks) {
            report.error(
                format!("{path}.jwks"),
                format!(
                    "the inline jwks is not a JSON Web Key Set: {problem}; it must be \
                     {{\"keys\": [{{\"kty\": …, …}}]}}"
                ),
            );
        }
        if rule.jwks_uri.is_some() {
            report.warning(
                format!("{path}.jwksUri"),
                "jwksUri is ignored when jwks is set inline: remove one of them",
            );
        }
    }
    for (k, header) in rule.from_headers.iter().enumerate() {
        header_name(
            report,
            &format!("{path}.fromHeaders[{k}].name"),
            &header.name,
        );
    }
    for (k, param) in rule.from_params.iter().enumerate() {
        if param.is_empty() {
            report.error(
                format!("{path}.fromParams[{k}]"),
                "empty query parameter name: remove it or name the parameter",
            );
        }
    }
    for (k, cookie) in rule.from_cookies.iter().enumerate() {
        if cookie.is_empty() || !cookie.bytes().all(is_token_char) {
            report.error(
                format!("{path}.fromCookies[{k}]"),
                format!("{cookie:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
            );
        }
    }
    if let Some(header) = &rule.output_payload_to_header {
        header_name(report, &format!("{path}.outputPayloadToHeader"), header);
    }
    for (k, c) in rule.output_claim_to_headers.iter().enumerate() {
        let base = format!("{path}.outputClaimToHeaders[{k}]");
        header_name(report, &format!("{base}.header"), &c.header);
        if c.claim.trim().is_empty() {
            report.error(
                format!("{base}.claim"),
                "no claim named: set the claim to copy, e.g. `sub` or `groups`",
            );
        }
    }
    if let Some(timeout) = &rule.timeout {
        match parse_duration(timeout) {
            Err(e) => report.error(format!("{path}.timeout"), format!("invalid duration: {e}")),
            Ok(d) if d.as_millis() < 1 => report.error(
                format!("{path}.timeout"),
                format!("timeout {timeout:?} is shorter than 1ms; JWKS fetches need time"),
            ),
            Ok(_) => {}
        }
    }
}

/// RFC 9110 token characters, what a header (or cookie) name is made of.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn header_name(report: &mut Report<'_>, path: &str, name: &str) {
    if name.is_empty() || !name.bytes().all(is_token_char) {
        report.error(
            path.to_string(),
            format!(
                "{name:?} is not an HTTP header name: use letters, digits and `-` (no spaces, \
                 colons or pseudo-headers), e.g. x-jwt-payload"
            ),
        );
    }
}

/// `http(s)://host[:port][/path]`, as Istio accepts for `jwksUri`.
fn http_url(uri: &str) -> Result<(), &'static str> {
    let (scheme, rest) = uri.split_once("://").ok_or("it has no scheme")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("the scheme must be http or https");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    // A port that is not a number from 0 to 65535 stays in the host.
    let (host, port) = crate::host::split_port(authority);
    if port == Some(0) {
        return Err("port 0 is not a port");
    }
    let ip = host.parse::<std::net::IpAddr>().is_ok();
    if host.is_empty() || !(ip || is_fqdn(host)) {
        return Err("it has no valid host and port");
    }
    if uri.contains(char::is_whitespace) {
        return Err("it contains spaces");
    }
    Ok(())
}

/// `{"keys": [{"kty": "RSA", …}, …]}`.
fn jwks_json(text: &str) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let keys = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("it has no `keys` list")?;
    if keys.is_empty() {
        return Err("`keys` is empty".to_string());
    }
    for (i, key) in keys.iter().enumerate() {
        if key.get("kty").and_then(serde_json::Value::as_str).is_none() {
            return Err(format!("keys[{i}] has no `kty` (key type, e.g. RSA or EC)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_uris() {
        for ok in [
            "https://www.googleapis.com/oauth2/v3/certs",
            "http://keycloak.auth:8080/realms/x/protocol/openid-connect/certs",
            "https://10.0.0.1/jwks",
            "https://[::1]:8443/jwks",
            "HTTPS://example.com",
        ] {
            assert_eq!(http_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "www.googleapis.com/certs",
            "ftp://example.com/jwks",
            "https:///jwks",
            "https://example.com:http/jwks",
            "https://exa mple.com/jwks",
            "https://example.com:0/",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jwks_sets() {
        assert!(jwks_json(r#"{"keys":[{"kty":"RSA","e":"AQAB","n":"x"}]}"#).is_ok());
        assert!(jwks_json("{").is_err());
        assert!(jwks_json(r#"{"keys":[]}"#).is_err());
        assert!(jwks_json(r#"{"keys":[{"e":"AQAB"}]}"#).is_err());
        assert!(jwks_json(r#"[{"kty":"RSA"}]"#).is_err());
    }
}
