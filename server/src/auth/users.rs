//! The console's users, sessions and API tokens in Postgres
//! (`migrations/0005_console_users.sql`). `loupe user add`/`loupe user token`
//! and the login endpoints both go through [`Users`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Role;
use super::password::{MIN_PASSWORD_LEN, hash_password, verify_nothing, verify_password};
use super::secret::{API_TOKEN_PREFIX, hash_token, new_api_token, random_hex};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user name {0:?} is not allowed: use 1 to 64 letters, digits, `.`, `_`, `-` or `@`")]
    BadName(String),
    #[error("the password is too short: use at least {MIN_PASSWORD_LEN} characters")]
    WeakPassword,
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("there is no user named {0:?}")]
    NoSuchUser(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("{action}: {source}")]
    Database {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> UserError {
    move |source| UserError::Database { action, source }
}

pub use loupe_api::auth::User;

/// A new browser session: the cookie's token and the page's CSRF token.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// An API token as listed: its name and use, never its value.
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct Users {
    pool: PgPool,
}

impl Users {
    pub fn new(pool: PgPool) -> Users {
        Users { pool }
    }

    /// Adds a user; refused if the name is taken.
    pub async fn add(&self, name: &str, role: Role, password: &str) -> Result<User, UserError> {
        check_name(name)?;
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(UserError::WeakPassword);
        }
        let hash = hash_password(password).map_err(|e| UserError::Hash(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO console_users (name, role, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(hash)
        .execute(&self.pool)
        .await
        .map_err(db("adding a console user"))?;
        if inserted.rows_affected() == 0 {
            return Err(UserError::Exists(name.to_string()));
        }
        tracing::info!(user = name, role = role.as_str(), "console user added");
        Ok(User {
            name: name.to_string(),
            role,
        })
    }

    /// Adds the user, or gives an existing one this role and password (how
    /// `loupe demo` makes its admin afresh on a database it used before).
    pub async fn add_or_reset(
        &self,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<User, UserError> {
        check_name(name)?;
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(UserError::WeakPassword);
        }
        let hash = hash_password(password).map_err(|e| UserError::Hash(e.to_string()))?;
        sqlx::query(
            "INSERT INTO console_users (name, role, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(hash)
        .execute(&self.pool)
        .await
        .map_err(db("adding a console user"))?;
        Ok(User {
            name: name.to_string(),
            role,
        })
    }

    /// Every user, by name.
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, role FROM console_users ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db("listing console users"))?;
        Ok(rows.into_iter().filter_map(user_of).collect())
    }

    /// The user if `password` is theirs; `None` for a wrong password and an
    /// unknown user alike, in about the same time.
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<User>, UserError> {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT name, role, password_hash FROM console_users WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading a console user"))?;
        let password = password.to_string();
        // argon2 takes tens of milliseconds of CPU: off the async workers.
        let verified = tokio::task::spawn_blocking(move || match row {
            Some((name, role, hash)) => verify_password(&password, &hash)
                .then(|| user_of((name, role)))
                .flatten(),
            None => {
                verify_nothing(&password);
                None
            }
        })
        .await
        .unwrap_or(None);
        Ok(verified)
    }

    /// Opens a session for `user`, valid for `ttl`; expired sessions are swept.
    pub async fn open_session(&self, user: &str, ttl: Duration) -> Result<Session, UserError> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < now()")
            .execute(&self.pool)
            .await
            .map_err(db("sweeping expired sessions"))?;
        let token = random_hex();
        let csrf_token = random_hex();
        let expires_at: DateTime<Utc> = sqlx::query_scalar(
            "INSERT INTO console_sessions (token_sha256, csrf_token, user_name, expires_at)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at",
        )
        .bind(hash_token(&token))
        .bind(&csrf_token)
        .bind(user)
        .bind(ttl.as_secs_f64())
        .fetch_one(&self.pool)
        .await
        .map_err(db("opening a session"))?;
        Ok(Session {
            token,
            csrf_token,
            expires_at,
        })
    }

    /// The user of a live session and its CSRF token.
    pub async fn session(&self, token: &str) -> Result<Option<(User, String)>, UserError> {
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT u.name, u.role, s.csrf_token
             FROM console_sessions s JOIN console_users u ON u.name = s.user_name
             WHERE s.token_sha256 = $1 AND s.expires_at > now()",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading a session"))?;
        Ok(row.and_then(|(name, role, csrf)| Some((user_of((name, role))?, csrf))))
    }

    /// Ends a session (logout); whether there was one.
    pub async fn close_session(&self, token: &str) -> Result<bool, UserError> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE token_sha256 = $1")
            .bind(hash_token(token))
            .execute(&self.pool)
            .await
            .map_err(db("closing a session"))?;
        Ok(r.rows_affected() > 0)
    }

    /// A new API token for `user`, named `name` (what it is for). Returned
    /// once, never stored.
    pub async fn issue_token(&self, user: &str, name: &str) -> Result<String, UserError> {
        let token = new_api_token();
        let inserted = sqlx::query(
            "INSERT INTO console_api_tokens (token_sha256, user_name, name)
             SELECT $1, name, $3 FROM console_users WHERE name = $2",
        )
        .bind(hash_token(&token))
        .bind(user)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db("issuing an API token"))?;
        if inserted.rows_affected() == 0 {
            return Err(UserError::NoSuchUser(user.to_string()));
        }
        tracing::info!(user, token_name = name, "console API token issued");
        Ok(token)
    }

    /// Removes a user; their sessions and API tokens go with them, so a
    /// logged-in browser or a script holding a token is refused from its
    /// next request. Whether there was such a user.
    pub async fn remove(&self, name: &str) -> Result<bool, UserError> {
        let r = sqlx::query("DELETE FROM console_users WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("removing a console user"))?;
        if r.rows_affected() > 0 {
            tracing::info!(
                user = name,
                "console user removed; its sessions and tokens revoked"
            );
        }
        Ok(r.rows_affected() > 0)
    }

    /// `user`'s API tokens (never the tokens themselves), oldest first.
    pub async fn tokens(&self, user: &str) -> Result<Vec<ApiToken>, UserError> {
        let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT name, created_at, last_used_at FROM console_api_tokens
              WHERE user_name = $1 ORDER BY created_at, name",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db("listing API tokens"))?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at, last_used_at)| ApiToken {
                name,
                created_at,
                last_used_at,
            })
            .collect())
    }

    /// Revokes `user`'s API tokens named `name`; how many there were.
    pub async fn revoke_tokens(&self, user: &str, name: &str) -> Result<u64, UserError> {
        let r = sqlx::query("DELETE FROM console_api_tokens WHERE user_name = $1 AND name = $2")
            .bind(user)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("revoking API tokens"))?;
        tracing::info!(
            user,
            token_name = name,
            revoked = r.rows_affected(),
            "API tokens revoked"
        );
        Ok(r.rows_affected())
    }

    /// Ends every browser session of `user` (e.g. after a password change).
    pub async fn close_sessions(&self, user: &str) -> Result<u64, UserError> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE user_name = $1")
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(db("closing sessions"))?;
        Ok(r.rows_affected())
    }

    /// The user an API token speaks for (and notes its use).
    pub async fn bearer(&self, token: &str) -> Result<Option<User>, UserError> {
        if !token.starts_with(API_TOKEN_PREFIX) {
            return Ok(None);
        }
        let row: Option<(String, String)> = sqlx::query_as(
            "UPDATE console_api_tokens t SET last_used_at = now()
             FROM console_users u
             WHERE t.token_sha256 = $1 AND u.name = t.user_name
             RETURNING u.name, u.role",
        )
        .bind(hash_token(token))
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading an API token"))?;
        Ok(row.and_then(user_of))
    }
}

fn user_of((name, role): (String, String)) -> Option<User> {
    Some(User {
        role: role.parse().ok()?,
        name,
    })
}

fn check_name(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadName(name.to_string()))
    }
}
