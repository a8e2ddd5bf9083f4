//! One CA for every replica: in cluster mode the CA's files live in a
//! Secret of the control plane's namespace, as istiod keeps them, and each
//! replica's CA directory is a copy of it.
//!
//! - `cacerts` (Istio's plugged-in CA: `ca-cert.pem`, `ca-key.pem`,
//!   `root-cert.pem`, `cert-chain.pem`) wins when it exists.
//! - Otherwise `istio-ca-secret` (Istio's self-signed root) is used; the
//!   first replica to start generates the root in its directory and creates
//!   the Secret. Creation is atomic: a replica that loses the race (409)
//!   takes the winner's files instead, so two replicas never sign with two
//!   roots.
//!
//! This runs before the control plane opens its CA; the CA then reads the
//! directory as in local mode (and keeps following it).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use loupe_control::ca::files::{CA_CERT, CA_KEY, CERT_CHAIN, CaDir, ROOT_CERT};
use loupe_control::ca::{CaError, CaOptions, CertificateAuthority};

/// Istio's plugged-in CA Secret.
pub const PLUGGED_IN: &str = "cacerts";
/// Istio's self-signed CA Secret.
pub const SELF_SIGNED: &str = "istio-ca-secret";
/// Istio's type for the self-signed CA Secret.
pub const SECRET_TYPE: &str = "istio.io/ca-root";
const FILES: [&str; 4] = [CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN];

#[derive(Debug, thiserror::Error)]
pub enum CaSecretError {
    #[error("cannot read or create the CA Secret {name} in {namespace}")]
    Api {
        name: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {0} has no {CA_KEY} and {CA_CERT}: give both (Istio's cacerts layout)")]
    Incomplete(&'static str),
    #[error(transparent)]
    Ca(#[from] CaError),
}

/// Makes `opts.dir` a copy of the namespace's CA Secret, creating
/// `istio-ca-secret` from a newly generated root when there is none.
/// Returns the Secret the CA came from.
pub async fn sync(
    client: kube::Client,
    namespace: &str,
    opts: &CaOptions,
) -> Result<&'static str, CaSecretError> {
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let api_error = |name: &'static str| {
        let namespace = namespace.to_string();
        move |source| CaSecretError::Api {
            name,
            namespace,
            source,
        }
    };
    for name in [PLUGGED_IN, SELF_SIGNED] {
        if let Some(secret) = secrets.get_opt(name).await.map_err(api_error(name))? {
            write_dir(&opts.dir, name, &secret)?;
            return Ok(name);
        }
    }
    // No CA yet: generate one here and offer it.
    CertificateAuthority::open(opts)?;
    let dir = CaDir::new(&opts.dir);
    let mut data = BTreeMap::new();
    for file in FILES {
        if dir.exists(file) {
            data.insert(file.to_string(), ByteString(dir.read(file)?.into_bytes()));
        }
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(SELF_SIGNED.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some(data),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(
                namespace,
                secret = SELF_SIGNED,
                "generated the mesh root and stored it"
            );
            Ok(SELF_SIGNED)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Another replica was first: use its root.
            let theirs = secrets
                .get(SELF_SIGNED)
                .await
                .map_err(api_error(SELF_SIGNED))?;
            write_dir(&opts.dir, SELF_SIGNED, &theirs)?;
            Ok(SELF_SIGNED)
        }
        Err(source) => Err(api_error(SELF_SIGNED)(source)),
    }
}

/// Writes the Secret's CA files into `dir` (the key 0600), removing those
/// it does not hold so no stale chain outlives a plugged-in CA.
fn write_dir(
    dir: &std::path::Path,
    name: &'static str,
    secret: &Secret,
) -> Result<(), CaSecretError> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |file: &str| {
        data.get(file)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let (Some(key), Some(cert)) = (text(CA_KEY), text(CA_CERT)) else {
        return Err(CaSecretError::Incomplete(name));
    };
    let dir = CaDir::new(dir);
    dir.create()?;
    dir.write_private(CA_KEY, &key)?;
    dir.write_public(CA_CERT, &cert)?;
    for file in [ROOT_CERT, CERT_CHAIN] {
        match text(file) {
            Some(contents) => dir.write_public(file, &contents)?,
            None => {
                let _ = std::fs::remove_file(dir.path(file));
            }
        }
    }
    Ok(())
}
