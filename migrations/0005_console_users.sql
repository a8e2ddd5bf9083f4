-- Console users (local accounts, as Grafana's and Kiali's login strategy
-- keep them). Passwords are stored only as argon2id PHC strings; session and
-- API tokens only as their SHA-256, like `workload_tokens`: a token is shown
-- once, when it is made, and a database dump lets no one log in.
CREATE TABLE console_users (
    name           TEXT        PRIMARY KEY,
    role           TEXT        NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    password_hash  TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A browser login: the cookie holds the token, the page holds the CSRF token
-- (sent back as `X-CSRF-Token` on every write).
CREATE TABLE console_sessions (
    token_sha256   BYTEA       PRIMARY KEY,
    csrf_token     TEXT        NOT NULL,
    user_name      TEXT        NOT NULL REFERENCES console_users (name) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL
);
-- Expired sessions are swept by time.
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- `Authorization: Bearer TOKEN` for the CLI and automation (`loupe user token NAME`).
CREATE TABLE console_api_tokens (
    token_sha256   BYTEA       PRIMARY KEY,
    user_name      TEXT        NOT NULL REFERENCES console_users (name) ON DELETE CASCADE,
    name           TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at   TIMESTAMPTZ
);
CREATE INDEX console_api_tokens_user ON console_api_tokens (user_name);

-- `GET /api/audit?user=U` and `loupe audit --user U`: one user's changes, newest first.
CREATE INDEX audit_log_actor ON audit_log (actor, at DESC);
