//! Bootstrap tokens, local mode's credential: 32 random bytes (64 hex
//! digits) bound to one WorkloadEntry, stored only as their SHA-256 in
//! `workload_tokens`. A new token for an entry replaces its previous one.

use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::{AuthError, Authenticated, Authenticator, Credential};

/// Length of a token in hex digits.
const TOKEN_HEX_LEN: usize = 64;

#[derive(Clone, Debug)]
pub struct BootstrapTokens {
    pool: PgPool,
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl BootstrapTokens {
    pub fn new(pool: PgPool) -> Self {
        BootstrapTokens { pool }
    }

    /// A new token for the WorkloadEntry `namespace/name`; the entry's
    /// previous token stops working. The token is returned once and never
    /// stored.
    pub async fn issue(&self, namespace: &str, name: &str) -> Result<String, sqlx::Error> {
        let token = hex::encode(rand::random::<[u8; 32]>());
        sqlx::query(
            "INSERT INTO workload_tokens (namespace, name, token_sha256)
             VALUES ($1, $2, $3)
             ON CONFLICT (namespace, name) DO UPDATE SET
                token_sha256 = EXCLUDED.token_sha256, created_at = now(), last_used_at = NULL",
        )
        .bind(namespace)
        .bind(name)
        .bind(hash_token(&token))
        .execute(&self.pool)
        .await?;
        tracing::info!(namespace, name, "bootstrap token issued");
        Ok(token)
    }

    /// Revokes the entry's token; whether there was one.
    pub async fn revoke(&self, namespace: &str, name: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("DELETE FROM workload_tokens WHERE namespace = $1 AND name = $2")
            .bind(namespace)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

#[tonic::async_trait]
impl Authenticator for BootstrapTokens {
    async fn authenticate(&self, credential: &Credential) -> Result<Authenticated, AuthError> {
        let Credential::Bearer(token) = credential;
        if token.len() != TOKEN_HEX_LEN || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Unknown);
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "UPDATE workload_tokens SET last_used_at = now()
             WHERE token_sha256 = $1 RETURNING namespace, name",
        )
        .bind(hash_token(&token.to_ascii_lowercase()))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        let (namespace, workload_entry) = row.ok_or(AuthError::Unknown)?;
        Ok(Authenticated {
            namespace,
            workload_entry,
        })
    }
}
