//! Who wrote each Istio object: the validating webhook is told of every
//! object it admits with `AdmissionReview.request.userInfo.username`
//! ([`loupe_k8s::webhook::OnAdmitted`]); that is recorded in Postgres
//! (`admission_authors`, shared by every replica, since any replica's
//! webhook may be the one called), and the mirror gives a revision the
//! author whose admitted spec is the spec it mirrors. An object no webhook
//! saw (its webhook was down with `failurePolicy: Ignore`, or it was
//! deleted: deletions are not validated) keeps the author `kubernetes`.
//!
//! The webhook answers once the record is written (so that it is there
//! before the API server stores the object and the mirror sees it), or
//! after [`RECORD_TIMEOUT`]: admission is never held up longer, and an
//! unrecorded revision says `kubernetes`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use loupe_k8s::webhook::{Admitted, OnAdmitted};
use loupe_model::{Kind, ResourceKey};
use serde_json::Value;
use sqlx::PgPool;

/// The longest an admission waits for its record.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(2);

/// The webhook's hook: each admitted object's author written to `pool`.
pub fn recorder(pool: PgPool) -> OnAdmitted {
    OnAdmitted(Arc::new(move |admitted: Admitted| {
        let pool = pool.clone();
        Box::pin(async move {
            match tokio::time::timeout(RECORD_TIMEOUT, record(&pool, &admitted)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, kind = admitted.kind, namespace = admitted.namespace, name = admitted.name, "cannot record who wrote an Istio object; its revision will say `kubernetes`")
                }
                Err(_) => {
                    tracing::warn!(
                        kind = admitted.kind,
                        namespace = admitted.namespace,
                        name = admitted.name,
                        "recording who wrote an Istio object timed out; its revision will say `kubernetes`"
                    )
                }
            }
        })
    }))
}

async fn record(pool: &PgPool, admitted: &Admitted) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM admission_authors WHERE admitted_at < now() - interval '1 hour'")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO admission_authors (kind, namespace, name, spec, username)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&admitted.kind)
    .bind(&admitted.namespace)
    .bind(&admitted.name)
    .bind(&admitted.spec)
    .bind(&admitted.username)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Who wrote what, as recorded: the newest author of each admitted spec.
#[derive(Debug, Default)]
pub struct Admissions(HashMap<ResourceKey, Vec<(Value, String)>>);

impl Admissions {
    /// Every record of the last hour.
    pub async fn load(pool: &PgPool) -> Result<Admissions, sqlx::Error> {
        let rows: Vec<(String, String, String, Value, String)> = sqlx::query_as(
            "SELECT kind, namespace, name, spec, username FROM admission_authors
             WHERE admitted_at > now() - interval '1 hour'
             ORDER BY admitted_at DESC, id DESC",
        )
        .fetch_all(pool)
        .await?;
        let mut by_key: HashMap<ResourceKey, Vec<(Value, String)>> = HashMap::new();
        for (kind, namespace, name, spec, username) in rows {
            let Some(kind) = Kind::from_kind_field(&kind) else {
                continue;
            };
            let key = ResourceKey {
                kind,
                namespace,
                name,
            };
            by_key.entry(key).or_default().push((spec, username));
        }
        Ok(Admissions(by_key))
    }

    /// Who last wrote `spec` for `key`, if a webhook saw it.
    pub fn author(&self, key: &ResourceKey, spec: &Value) -> Option<&str> {
        self.0
            .get(key)?
            .iter()
            .find(|(admitted, _)| admitted == spec)
            .map(|(_, username)| username.as_str())
    }
}
