-- Who wrote an Istio object through the Kubernetes API, as the validating
-- webhook saw it (`AdmissionReview.request.userInfo.username`), with the
-- spec it admitted. Cluster mode's mirror gives a revision the author whose
-- admitted spec is the one it mirrors (any replica's webhook may have been
-- called, hence a table). Rows older than an hour are pruned.
CREATE TABLE admission_authors (
    id          BIGSERIAL   PRIMARY KEY,
    kind        TEXT        NOT NULL,
    namespace   TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    spec        JSONB       NOT NULL,
    username    TEXT        NOT NULL,
    admitted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admission_authors_admitted_at ON admission_authors (admitted_at);
