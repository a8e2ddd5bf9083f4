//! A test certificate authority serving `Certificates.CreateCertificate`
//! beside the fake Discovery server: it signs whatever SPIFFE ID a CSR asks
//! for (authenticating the proxy is the real control plane's job, tested in
//! loupe-control), with the lifetime the proxy requests.

#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use loupe_push::certificates_server::Certificates;
use loupe_push::{CertificateRequest, CertificateResponse};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub issued: std::sync::atomic::AtomicU64,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed root"),
            issued: Default::default(),
        }
    }

    pub fn root_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Signs a CSR, `ttl` from now (backdated a tenth of it, at most a
    /// minute, as the control plane's CA does).
    pub fn sign(&self, csr_pem: &str, ttl: Duration) -> Result<String, String> {
        let mut csr =
            CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| e.to_string())?;
        let now = SystemTime::now();
        csr.params.not_before = (now - (ttl / 10).min(Duration::from_secs(60))).into();
        csr.params.not_after = (now + ttl).into();
        csr.params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        csr.params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.serial_number = Some(rand_serial().into());
        let cert = csr.signed_by(&self.issuer).map_err(|e| e.to_string())?;
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(cert.pem())
    }

    /// A key and certificate for `spiffe_uri` signed by this CA (PEMs), for
    /// clients the tests write by hand.
    pub fn leaf(&self, spiffe_uri: &str) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(spiffe_uri.try_into().expect("uri"))];
        let csr = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        let cert = self.sign(&csr, Duration::from_secs(3600)).expect("sign");
        (cert, key.serialize_pem())
    }
}

impl TestCa {
    /// A key and certificate (PEMs) for the DNS name `dns`, with `cn` as
    /// its common name: a server outside the mesh, or a client of one.
    pub fn dns_leaf(&self, dns: &str, cn: &str) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![dns.to_string()]).expect("DNS name");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        let csr = params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem");
        let cert = self.sign(&csr, Duration::from_secs(3600)).expect("sign");
        (cert, key.serialize_pem())
    }
}

fn rand_serial() -> Vec<u8> {
    let mut b: [u8; 16] = rand::random();
    b[0] &= 0x7f;
    b.to_vec()
}

pub struct CaService {
    pub ca: std::sync::Arc<TestCa>,
    pub default_ttl: Duration,
}

#[tonic::async_trait]
impl Certificates for CaService {
    async fn create_certificate(
        &self,
        request: tonic::Request<CertificateRequest>,
    ) -> Result<tonic::Response<CertificateResponse>, tonic::Status> {
        let req = request.into_inner();
        let ttl = if req.validity_duration > 0 {
            Duration::from_secs(req.validity_duration as u64)
        } else {
            self.default_ttl
        };
        let cert = self
            .ca
            .sign(&req.csr, ttl)
            .map_err(tonic::Status::invalid_argument)?;
        Ok(tonic::Response::new(CertificateResponse {
            cert_chain: vec![cert],
            trust_bundle: vec![self.ca.root_pem()],
        }))
    }
}
