-- The last snapshot a proxy refused (NACK) and its reason, beside the last it
-- applied (acked_version): the console shows proxies stuck on old config.
ALTER TABLE workloads
    ADD COLUMN nacked_version BIGINT,
    ADD COLUMN nack_error     TEXT;
