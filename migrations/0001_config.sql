-- Config store (control plane, local mode): every change is a new revision.
-- The current state of a resource is its newest revision; a deletion is a
-- revision with `deleted = true`; a rollback is a new revision with old YAML.
CREATE TABLE config_revisions (
    id          BIGSERIAL PRIMARY KEY,
    kind        TEXT        NOT NULL,
    namespace   TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    revision    INTEGER     NOT NULL,
    yaml        TEXT        NOT NULL,
    -- The resource as Kubernetes JSON (what proxies receive).
    object      JSONB       NOT NULL,
    deleted     BOOLEAN     NOT NULL DEFAULT FALSE,
    author      TEXT        NOT NULL,
    message     TEXT        NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, namespace, name, revision)
);
-- "Newest revision of each resource" and history reads.
CREATE INDEX config_revisions_latest ON config_revisions (kind, namespace, name, revision DESC);

-- Every change made through any door (CLI, console), who and what.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    resource    TEXT        NOT NULL,
    revision_id BIGINT      REFERENCES config_revisions (id),
    detail      JSONB       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

-- Workloads whose proxies are (or were) connected to the control plane.
CREATE TABLE workloads (
    namespace        TEXT        NOT NULL,
    name             TEXT        NOT NULL,
    service_account  TEXT        NOT NULL,
    labels           JSONB       NOT NULL DEFAULT '{}'::jsonb,
    services         TEXT[]      NOT NULL DEFAULT '{}',
    inbound_address  TEXT        NOT NULL,
    metrics_address  TEXT        NOT NULL,
    gateway          BOOLEAN     NOT NULL DEFAULT FALSE,
    connected        BOOLEAN     NOT NULL DEFAULT TRUE,
    acked_version    BIGINT,
    last_seen        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, name, inbound_address)
);
