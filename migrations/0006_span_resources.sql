-- What a resource and instrumentation scope say is the same for every span
-- sent under them: stored once here instead of copied into every span's
-- `attributes` (a small request with large resource attributes and many
-- spans no longer multiplies them). `resource_id` is a hash of the content,
-- so the same resource from many requests is one row.
CREATE TABLE span_resources (
    resource_id TEXT        PRIMARY KEY,
    -- `resource.<key>` for each resource attribute, `otel.scope.name`, `otel.scope.version`.
    attributes  JSONB       NOT NULL,
    -- Refreshed at most hourly while spans keep arriving; retention deletes old ones.
    last_seen   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX span_resources_last_seen ON span_resources (last_seen);

-- NULL for spans written before 0006 (their resource attributes are inline).
ALTER TABLE spans ADD COLUMN resource_id TEXT;

-- `spans` as it read before 0006: one flat `attributes` object, span
-- attributes plus `resource.<key>` and `otel.scope.*` (the resource's win
-- on a clash, as they did when they were copied in).
CREATE VIEW spans_with_resource AS
SELECT s.trace_id, s.span_id, s.parent_span_id, s.service, s.operation, s.kind,
       s.start_time, s.duration_us, s.status_code,
       CASE WHEN r.attributes IS NULL THEN s.attributes
            ELSE s.attributes || r.attributes END AS attributes,
       s.resource_id
  FROM spans s
  LEFT JOIN span_resources r ON r.resource_id = s.resource_id;
