//! Session, CSRF and API tokens: random, shown once, stored only as their
//! SHA-256 (the same helper as the control plane's bootstrap tokens), and
//! compared in constant time where a comparison is not a hash lookup.

use subtle::ConstantTimeEq;

/// API tokens start with this, so a leaked one is recognisable (secret
/// scanners, logs) and never confused with a session token.
pub const API_TOKEN_PREFIX: &str = "loupe_";

/// 32 random bytes as 64 hex digits.
pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A password for a generated account (`loupe demo`'s admin): 128 random
/// bits as 32 hex digits.
pub fn random_password() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A new API token: the prefix and 64 hex digits.
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", random_hex())
}

/// The stored form of a session or API token.
pub fn hash_token(token: &str) -> Vec<u8> {
    loupe_control::authn::hash_token(token)
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compare_exactly() {
        let (a, b) = (new_api_token(), new_api_token());
        assert_ne!(a, b);
        assert!(a.starts_with(API_TOKEN_PREFIX) && a.len() == API_TOKEN_PREFIX.len() + 64);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..10]));
        assert_eq!(hash_token(&a).len(), 32);
    }
}
