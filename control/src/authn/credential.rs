//! The credential of a call, from its `authorization` metadata.

use tonic::metadata::MetadataMap;

use super::AuthError;

/// Longer than any bootstrap token or Kubernetes service-account JWT.
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `authorization: Bearer TOKEN`.
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    // Never a secret in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(…)"),
        }
    }
}

impl Credential {
    pub fn from_metadata(metadata: &MetadataMap) -> Result<Credential, AuthError> {
        let value = metadata.get("authorization").ok_or(AuthError::Missing)?;
        let text = value
            .to_str()
            .map_err(|_| AuthError::Malformed("not ASCII".into()))?;
        if text.len() > MAX_CREDENTIAL_LEN {
            return Err(AuthError::Malformed(format!(
                "{} bytes, above the {MAX_CREDENTIAL_LEN}-byte limit",
                text.len()
            )));
        }
        let (scheme, token) = text
            .split_once(' ')
            .ok_or_else(|| AuthError::Malformed("no scheme".into()))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed(format!(
                "scheme {scheme:?}, expected Bearer"
            )));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed("empty token".into()));
        }
        Ok(Credential::Bearer(token.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn bearer_tokens_are_read_and_everything_else_refused() {
        assert_eq!(
            Credential::from_metadata(&with("Bearer abc")).unwrap(),
            Credential::Bearer("abc".into())
        );
        assert_eq!(
            Credential::from_metadata(&with("bearer  abc ")).unwrap(),
            Credential::Bearer("abc".into())
        );
        assert!(matches!(
            Credential::from_metadata(&MetadataMap::new()),
            Err(AuthError::Missing)
        ));
        for bad in [
            "Basic abc",
            "abc",
            "Bearer ",
            &format!("Bearer {}", "a".repeat(9000)),
        ] {
            assert!(
                matches!(
                    Credential::from_metadata(&with(bad)),
                    Err(AuthError::Malformed(_))
                ),
                "{bad:.20}"
            );
        }
        assert_eq!(
            format!("{:?}", Credential::Bearer("secret".into())),
            "Bearer(…)"
        );
    }
}
