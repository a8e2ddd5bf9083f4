//! Same-origin check for writes made with a session cookie: the `Origin`
//! header (or, when a browser sends none, the `Referer`'s origin) must name
//! the `Host` the request was sent to. A cross-site form or `fetch` carries
//! its own site's origin and is refused, whatever its `Content-Type`.

use axum::http::{HeaderMap, header};

/// Why a write's origin is refused.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), String> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("the request has no Host header")?;
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok())
        .ok_or("a write with a session cookie must carry an Origin (or Referer) header")?;
    match authority_of(claimed) {
        Some(authority) if same_authority(&authority, host, claimed) => Ok(()),
        _ => Err(format!(
            "cross-origin write refused: origin {claimed:?} is not this console ({host})"
        )),
    }
}

/// `host[:port]` of `scheme://host[:port]/…`.
fn authority_of(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    // No credentials in an origin.
    (!authority.is_empty() && !authority.contains('@')).then(|| authority.to_ascii_lowercase())
}

fn same_authority(authority: &str, host: &str, url: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let default_port = if url.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    let strip = |a: &str| a.strip_suffix(default_port).unwrap_or(a).to_string();
    strip(authority) == strip(&host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_consoles_own_origin_passes() {
        let host = (header::HOST, "127.0.0.1:20001");
        let ok = |o: &str| check_same_origin(&headers(&[host.clone(), (header::ORIGIN, o)]));
        assert!(ok("http://127.0.0.1:20001").is_ok());
        assert!(ok("http://evil.example").is_err());
        assert!(ok("http://127.0.0.1:20002").is_err());
        assert!(ok("null").is_err());
        assert!(ok("http://127.0.0.1:20001@evil.example").is_err());
        let referer = headers(&[
            host.clone(),
            (header::REFERER, "http://127.0.0.1:20001/config"),
        ]);
        assert!(check_same_origin(&referer).is_ok());
        assert!(
            check_same_origin(&headers(&[host])).is_err(),
            "neither header"
        );
        let default_port = headers(&[
            (header::HOST, "console.example:443"),
            (header::ORIGIN, "https://console.example"),
        ]);
        assert!(check_same_origin(&default_port).is_ok());
    }
}
