-- Bootstrap credentials of local mode (`loupe workload token NS/NAME`): each
-- binds a proxy to one WorkloadEntry. Only the SHA-256 of a token is kept;
-- the token itself is shown once, when it is made. One per entry: a new
-- token replaces the entry's previous one.
CREATE TABLE workload_tokens (
    namespace     TEXT        NOT NULL,
    name          TEXT        NOT NULL,
    token_sha256  BYTEA       NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    PRIMARY KEY (namespace, name)
);
