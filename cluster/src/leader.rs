//! Leader election over a `coordination.k8s.io/v1` Lease, as istiod's (and
//! every controller's) election works: the replica named in
//! `holderIdentity` whose `renewTime` is within `leaseDurationSeconds`
//! leads; it renews every [`RENEW`]; any replica takes over a lease that
//! ran out. Writes go through the Lease's `resourceVersion`, so two
//! replicas racing for it cannot both win. Only the leader mirrors config
//! into the store, writes status and publishes the root ConfigMaps; every
//! replica serves proxies.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

/// The Lease's name.
pub const LEASE_NAME: &str = "loupe-control";
/// How long a lease holds without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews (and others look).
pub const RENEW: Duration = Duration::from_secs(5);

/// Takes part in the election in `namespace` as `identity` (the pod's
/// name); the receiver says whether this replica leads now.
pub fn elect(client: kube::Client, namespace: &str, identity: String) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let leases: Api<Lease> = Api::namespaced(client, namespace);
    tokio::spawn(async move {
        loop {
            let leads = match try_lead(&leases, &identity).await {
                Ok(leads) => leads,
                Err(error) => {
                    tracing::warn!(%error, "leader election: cannot read or write the Lease");
                    // Not knowing is not leading once the lease may have run out.
                    false
                }
            };
            if *tx.borrow() != leads {
                tracing::info!(leader = leads, identity = %identity, "leadership changed");
            }
            tx.send_replace(leads);
            tokio::time::sleep(RENEW).await;
        }
    });
    rx
}

/// Renews or takes the lease when it is ours or has run out.
async fn try_lead(leases: &Api<Lease>, identity: &str) -> Result<bool, kube::Error> {
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    let seconds = i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(15);
    let Some(mut lease) = leases.get_opt(LEASE_NAME).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(LEASE_NAME.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(identity.into()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match leases.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let ours = spec.holder_identity.as_deref() == Some(identity);
    let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
        let held = spec.lease_duration_seconds.unwrap_or(seconds);
        renewed.0 + k8s_openapi::jiff::SignedDuration::from_secs(i64::from(held)) < now.0
    });
    if !ours && !expired {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(identity.into());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(seconds);
    // The resourceVersion read above: a replica that wrote meanwhile wins.
    match leases
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
