-- Telemetry: spans and metric rollups, partitioned by day so retention
-- drops partitions instead of deleting rows. The collector creates the
-- partitions it needs (`loupe_ensure_partitions`); the DEFAULT partitions
-- catch anything outside them so a write never fails for want of one.

CREATE TABLE spans (
    trace_id        TEXT        NOT NULL,
    span_id         TEXT        NOT NULL,
    parent_span_id  TEXT,
    service         TEXT        NOT NULL,
    operation       TEXT        NOT NULL,
    kind            SMALLINT    NOT NULL DEFAULT 0,
    start_time      TIMESTAMPTZ NOT NULL,
    duration_us     BIGINT      NOT NULL,
    status_code     SMALLINT    NOT NULL DEFAULT 0,
    attributes      JSONB       NOT NULL DEFAULT '{}'::jsonb
) PARTITION BY RANGE (start_time);
CREATE TABLE spans_default PARTITION OF spans DEFAULT;
CREATE INDEX spans_trace ON spans (trace_id);

-- One row per trace, kept current as its spans arrive: trace search reads this.
CREATE TABLE trace_summaries (
    trace_id        TEXT        PRIMARY KEY,
    root_service    TEXT,
    root_operation  TEXT,
    start_time      TIMESTAMPTZ NOT NULL,
    end_time        TIMESTAMPTZ NOT NULL,
    span_count      INTEGER     NOT NULL,
    error_count     INTEGER     NOT NULL DEFAULT 0,
    services        TEXT[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX trace_summaries_start ON trace_summaries (start_time DESC);
CREATE INDEX trace_summaries_services ON trace_summaries USING GIN (services);

-- Per-interval deltas of istio_requests_total / istio_request_duration_milliseconds,
-- one row per (scrape interval, reporter, edge, response code).
CREATE TABLE edge_rollups (
    ts                              TIMESTAMPTZ NOT NULL,
    interval_s                      REAL        NOT NULL,
    reporter                        TEXT        NOT NULL,
    source_workload                 TEXT        NOT NULL,
    source_workload_namespace       TEXT        NOT NULL,
    source_app                      TEXT        NOT NULL,
    source_version                  TEXT        NOT NULL,
    destination_workload            TEXT        NOT NULL,
    destination_workload_namespace  TEXT        NOT NULL,
    destination_app                 TEXT        NOT NULL,
    destination_version             TEXT        NOT NULL,
    destination_service             TEXT        NOT NULL,
    response_code                   TEXT        NOT NULL,
    connection_security_policy      TEXT        NOT NULL,
    requests                        BIGINT      NOT NULL,
    duration_sum_ms                 DOUBLE PRECISION NOT NULL,
    -- Delta counts per histogram bucket, bounds in `bucket_bounds_ms`.
    bucket_bounds_ms                DOUBLE PRECISION[] NOT NULL,
    bucket_counts                   BIGINT[]    NOT NULL
) PARTITION BY RANGE (ts);
CREATE TABLE edge_rollups_default PARTITION OF edge_rollups DEFAULT;
CREATE INDEX edge_rollups_ts ON edge_rollups (ts DESC);

-- Spans and data points the collector had to drop (backpressure), counted, never silent.
CREATE TABLE telemetry_drops (
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    signal   TEXT        NOT NULL,
    count    BIGINT      NOT NULL,
    reason   TEXT        NOT NULL
);
