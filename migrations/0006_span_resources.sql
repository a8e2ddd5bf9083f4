-- What a resource says is the same for every span sent under it, and so is
-- what an instrumentation scope says: each is stored once here instead of
-- copied into every span's `attributes` (a small request with large
-- resource attributes and many spans or scopes no longer multiplies them).
-- `resource_id` is a hash of the content, so the same resource or scope
-- from many requests is one row.
CREATE TABLE span_resources (
    resource_id TEXT        PRIMARY KEY,
    -- A resource: `resource.<key>` for each of its attributes.
    -- A scope: `otel.scope.name`, `otel.scope.version`.
    attributes  JSONB       NOT NULL,
    -- Refreshed at most hourly while spans keep arriving; retention deletes old ones.
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX span_resources_last_seen ON span_resources (last_seen);

-- Both NULL for spans written before 0006 (their resource and scope
-- attributes are inline), and for spans sent without either.
ALTER TABLE spans ADD COLUMN resource_id TEXT, ADD COLUMN scope_id TEXT;

-- `spans` as it read before 0006: one flat `attributes` object, span
-- attributes plus `resource.<key>` and `otel.scope.*` (the resource's and
-- scope's win on a clash, as they did when they were copied in).
CREATE VIEW spans_with_resource AS
SELECT s.trace_id, s.span_id, s.parent_span_id, s.service, s.operation, s.kind,
       s.start_time, s.duration_us, s.status_code,
       s.attributes || coalesce(r.attributes, '{}'::jsonb)
                    || coalesce(c.attributes, '{}'::jsonb) AS attributes,
       s.resource_id, s.scope_id
  FROM spans s
  LEFT JOIN span_resources r ON r.resource_id = s.resource_id
  LEFT JOIN span_resources c ON c.resource_id = s.scope_id;
