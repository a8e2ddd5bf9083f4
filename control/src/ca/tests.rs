//! The CA against real X.509 verification (rustls/webpki, as a peer
//! would check the certificates).

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::GeneralName;

use super::*;

fn opts(dir: &Path) -> CaOptions {
    CaOptions::new(dir)
}

fn csr_for(uris: &[&str], dns: &[&str]) -> (KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for uri in uris {
        params
            .subject_alt_names
            .push(SanType::URI(uri.to_string().try_into().unwrap()));
    }
    for name in dns {
        params
            .subject_alt_names
            .push(SanType::DnsName(name.to_string().try_into().unwrap()));
    }
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, csr)
}

fn der(pem_text: &str) -> CertificateDer<'static> {
    pem::certificates(pem_text).unwrap().remove(0).der
}

/// Verifies `chain` (leaf first) as a client certificate against `roots`,
/// the way a peer proxy's rustls does.
fn verify(chain: &[String], roots: &[String]) -> Result<(), rustls::Error> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(der(r)).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(store),
        crate::tls::provider(),
    )
    .build()
    .unwrap();
    let intermediates: Vec<CertificateDer<'static>> = chain[1..].iter().map(|c| der(c)).collect();
    verifier
        .verify_client_cert(&der(&chain[0]), &intermediates, UnixTime::now())
        .map(|_| ())
}

fn uri_sans(cert_pem: &str) -> Vec<String> {
    let cert = pem::certificates(cert_pem).unwrap().remove(0);
    let parsed = cert.parse().unwrap();
    let san = parsed.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => format!("URI:{u}"),
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) => match b.len() {
                4 => format!("IP:{}", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])),
                _ => format!("IP:{b:?}"),
            },
            other => other.to_string(),
        })
        .collect()
}

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";

#[test]
fn a_generated_root_signs_a_csr_and_the_leaf_verifies_with_its_spiffe_id() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::open(&opts(dir.path())).unwrap();
    let id = ca.identity("default", "bookinfo-productpage");
    let (_key, csr) = csr_for(&[PRODUCTPAGE], &[]);
    let issued = ca.sign_csr(&csr, &id, Duration::ZERO).unwrap();
    assert_eq!(issued.cert_chain.len(), 1, "a generated root: leaf only");
    assert_eq!(issued.trust_bundle.len(), 1);
    verify(&issued.cert_chain, &issued.trust_bundle).expect("leaf verifies to the root");
    assert_eq!(
        uri_sans(&issued.cert_chain[0]),
        [format!("URI:{PRODUCTPAGE}")]
    );

    let leaf = pem::certificates(&issued.cert_chain[0]).unwrap().remove(0);
    let parsed = leaf.parse().unwrap();
    assert!(!parsed.is_ca());
    let eku = parsed.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth);
    let ku = parsed.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let validity = parsed.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(
        lifetime,
        24 * 3600 + 60,
        "24 h, not-before backdated a minute"
    );
    assert!(validity.not_before.timestamp() < time::OffsetDateTime::now_utc().unix_timestamp());
    assert!(parsed.raw_serial().len() >= 16, "a random 128-bit serial");

    // Two leaves never share a serial.
    let again = ca.sign_csr(&csr, &id, Duration::ZERO).unwrap();
    let serial = |p: &str| {
        pem::certificates(p).unwrap()[0]
            .parse()
            .unwrap()
            .raw_serial()
            .to_vec()
    };
    assert_ne!(serial(&again.cert_chain[0]), serial(&issued.cert_chain[0]));
}

#[test]
fn a_requested_lifetime_is_honoured_up_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.lifetimes = Lifetimes {
        default: Duration::from_secs(3600),
        max: Duration::from_secs(7200),
    };
    let ca = CertificateAuthority::open(&o).unwrap();
    let id = ca.identity("default", "bookinfo-productpage");
    let (_key, csr) = csr_for(&[PRODUCTPAGE], &[]);
    let lifetime = |requested: u64| {
        let issued = ca
            .sign_csr(&csr, &id, Duration::from_secs(requested))
            .unwrap();
        let leaf = pem::certificates(&issued.cert_chain[0]).unwrap().remove(0);
        let v = leaf.parse().unwrap().validity().clone();
        v.not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp()
    };
    assert!((lifetime(20) - 20).abs() <= 2);
    assert!((lifetime(0) - 3600).abs() <= 2);
    assert!((lifetime(1_000_000) - 7200).abs() <= 2);
}

#[test]
fn a_csr_for_another_identity_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::open(&opts(dir.path())).unwrap();
    let id = ca.identity("default", "bookinfo-productpage");
    let other = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    let (_k, csr) = csr_for(&[other], &[]);
    let err = ca.sign_csr(&csr, &id, Duration::ZERO).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CaError::WrongIdentity { .. }), "{msg}");
    assert!(msg.contains(other) && msg.contains(PRODUCTPAGE), "{msg}");

    // The right URI plus anything else is refused too.
    let (_k, csr) = csr_for(&[PRODUCTPAGE], &["reviews.default.svc.cluster.local"]);
    let msg = ca
        .sign_csr(&csr, &id, Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("DNS:reviews.default.svc.cluster.local"),
        "{msg}"
    );
    let (_k, csr) = csr_for(&[], &[]);
    let msg = ca
        .sign_csr(&csr, &id, Duration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no URI SAN"), "{msg}");
    assert!(matches!(
        ca.sign_csr("not a csr", &id, Duration::ZERO),
        Err(CaError::BadCsr(_))
    ));
}

#[test]
fn the_root_is_kept_and_reused_with_its_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let first = CertificateAuthority::open(&opts(&ca_dir)).unwrap();
    let root = first.trust_bundle().to_pem();
    assert_eq!(files::mode_of(&ca_dir.join(files::CA_KEY)), Some(0o600));
    assert_eq!(files::mode_of(&ca_dir), Some(0o700));
    assert_eq!(
        std::fs::read_to_string(first.root_cert_path()).unwrap(),
        root
    );
    let key_before = std::fs::read(ca_dir.join(files::CA_KEY)).unwrap();
    drop(first);

    let second = CertificateAuthority::open(&opts(&ca_dir)).unwrap();
    assert_eq!(
        second.trust_bundle().to_pem(),
        root,
        "the same root after a restart"
    );
    assert_eq!(
        std::fs::read(ca_dir.join(files::CA_KEY)).unwrap(),
        key_before
    );
    let (_k, csr) = csr_for(&[PRODUCTPAGE], &[]);
    let issued = second
        .sign_csr(
            &csr,
            &second.identity("default", "bookinfo-productpage"),
            Duration::ZERO,
        )
        .unwrap();
    verify(&issued.cert_chain, &[root]).expect("signed by the kept root");
}

#[test]
fn a_directory_with_part_of_a_ca_or_a_foreign_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    CertificateAuthority::open(&opts(dir.path())).unwrap();
    std::fs::remove_file(dir.path().join(files::CA_KEY)).unwrap();
    let err = CertificateAuthority::open(&opts(dir.path())).err().unwrap();
    assert!(
        matches!(
            err,
            CaError::Incomplete {
                missing: files::CA_KEY,
                ..
            }
        ),
        "{err}"
    );

    std::fs::write(
        dir.path().join(files::CA_KEY),
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let err = CertificateAuthority::open(&opts(dir.path()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("is not the key of ca-cert.pem"), "{err}");
}

/// Istio's `cacerts`: a root, and an intermediate that signs.
struct Plugged {
    root: String,
    intermediate: String,
}

fn plug_in(dir: &Path) -> Plugged {
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::default();
    root.distinguished_name = DistinguishedName::new();
    root.distinguished_name
        .push(DnType::CommonName, "Corp Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_cert = root.self_signed(&root_key).unwrap();
    let root_issuer = rcgen::Issuer::new(root, root_key);

    let key = KeyPair::generate().unwrap();
    let mut inter = CertificateParams::default();
    inter.distinguished_name = DistinguishedName::new();
    inter
        .distinguished_name
        .push(DnType::CommonName, "Mesh Intermediate");
    inter.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    inter.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let inter_cert = inter.signed_by(&key, &root_issuer).unwrap();

    std::fs::write(dir.join(files::CA_KEY), key.serialize_pem()).unwrap();
    std::fs::write(dir.join(files::CA_CERT), inter_cert.pem()).unwrap();
    std::fs::write(dir.join(files::ROOT_CERT), root_cert.pem()).unwrap();
    std::fs::write(
        dir.join(files::CERT_CHAIN),
        format!("{}{}", inter_cert.pem(), root_cert.pem()),
    )
    .unwrap();
    Plugged {
        root: pem::encode(root_cert.der()),
        intermediate: pem::encode(inter_cert.der()),
    }
}

#[test]
fn a_plugged_in_ca_signs_with_its_intermediate_and_sends_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let plugged = plug_in(dir.path());
    let ca = CertificateAuthority::open(&opts(dir.path())).unwrap();
    assert_eq!(
        ca.trust_bundle().pems(),
        std::slice::from_ref(&plugged.root)
    );
    let (_k, csr) = csr_for(&[PRODUCTPAGE], &[]);
    let issued = ca
        .sign_csr(
            &csr,
            &ca.identity("default", "bookinfo-productpage"),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(
        issued.cert_chain.len(),
        2,
        "leaf, intermediate; never the root"
    );
    assert_eq!(issued.cert_chain[1], plugged.intermediate);
    let leaf = pem::certificates(&issued.cert_chain[0]).unwrap().remove(0);
    assert_eq!(
        leaf.parse().unwrap().issuer().to_string(),
        "CN=Mesh Intermediate"
    );
    verify(&issued.cert_chain, std::slice::from_ref(&plugged.root))
        .expect("leaf → intermediate → root");
    // Without the intermediate a peer could not build the path.
    assert!(verify(&issued.cert_chain[..1], &[plugged.root]).is_err());
    // A plugged-in CA's files are never rewritten.
    assert!(dir.path().join(files::CERT_CHAIN).exists());
}

#[test]
fn a_bundle_of_two_roots_is_sent_whole_and_either_root_verifies_its_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let old = CertificateAuthority::open(&opts(&dir.path().join("old"))).unwrap();
    let new_dir = dir.path().join("new");
    let new = CertificateAuthority::open(&opts(&new_dir)).unwrap();
    // Rotation step 2: sign with the new root, trust both.
    let both = format!(
        "{}{}",
        old.trust_bundle().to_pem(),
        new.trust_bundle().to_pem()
    );
    std::fs::write(new_dir.join(files::ROOT_CERT), &both).unwrap();
    let rotating = CertificateAuthority::open(&opts(&new_dir)).unwrap();
    assert_eq!(rotating.trust_bundle().roots().len(), 2);
    let (_k, csr) = csr_for(&[PRODUCTPAGE], &[]);
    let id = rotating.identity("default", "bookinfo-productpage");
    let issued = rotating.sign_csr(&csr, &id, Duration::ZERO).unwrap();
    assert_eq!(issued.trust_bundle.len(), 2);
    verify(&issued.cert_chain, &issued.trust_bundle).unwrap();
    let from_old = old.sign_csr(&csr, &id, Duration::ZERO).unwrap();
    verify(&from_old.cert_chain, &issued.trust_bundle).expect("old leaves still verify");

    // A bundle holding something that is not a root is refused.
    let leaf_only = issued.cert_chain[0].clone();
    std::fs::write(new_dir.join(files::ROOT_CERT), leaf_only).unwrap();
    let err = CertificateAuthority::open(&opts(&new_dir))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("root-cert.pem"), "{err}");
}

#[test]
fn the_server_certificate_names_localhost_and_the_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::open(&opts(dir.path())).unwrap();
    let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap();
    let cert = ca
        .server_certificate(&[ip, "0.0.0.0".parse().unwrap()], &[])
        .unwrap();
    let leaf = PemCert::from_der(cert.chain[0].clone());
    let sans = uri_sans(&leaf.pem);
    assert_eq!(sans, ["DNS:localhost", "IP:127.0.0.1", "IP:10.1.2.3"]);
    assert!(leaf.is_signed_by(&ca.trust_bundle().roots()[0]));
}
