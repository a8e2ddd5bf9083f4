//! PEM certificates: split a file into its certificates (each kept as its
//! own normalized PEM text, the form the protocol sends) and read them.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_parser::certificate::X509Certificate;

/// One certificate: its PEM text and its DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemCert {
    pub pem: String,
    pub der: CertificateDer<'static>,
}

impl PemCert {
    pub fn from_der(der: CertificateDer<'static>) -> PemCert {
        PemCert {
            pem: encode(&der),
            der,
        }
    }

    /// The parsed certificate (parsing is cheap; nothing is cached).
    pub fn parse(&self) -> Result<X509Certificate<'_>, String> {
        x509_parser::parse_x509_certificate(&self.der)
            .map(|(_, c)| c)
            .map_err(|e| format!("not an X.509 certificate: {e}"))
    }

    /// True for a self-signed certificate (a root).
    pub fn is_self_signed(&self) -> bool {
        self.parse().is_ok_and(|c| {
            c.subject() == c.issuer() && c.verify_signature(Some(c.public_key())).is_ok()
        })
    }

    /// True when `issuer`'s key signed this certificate.
    pub fn is_signed_by(&self, issuer: &PemCert) -> bool {
        match (self.parse(), issuer.parse()) {
            (Ok(c), Ok(i)) => {
                c.issuer() == i.subject() && c.verify_signature(Some(i.public_key())).is_ok()
            }
            _ => false,
        }
    }

    pub fn subject(&self) -> String {
        self.parse()
            .map(|c| c.subject().to_string())
            .unwrap_or_default()
    }
}

/// Every certificate in a PEM text, in order. Other PEM sections (keys,
/// parameters) are an error: a certificate file should hold certificates.
pub fn certificates(text: &str) -> Result<Vec<PemCert>, String> {
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(text.as_bytes()) {
        let der = item.map_err(|e| format!("not PEM certificates: {e}"))?;
        let cert = PemCert::from_der(der.into_owned());
        cert.parse()?;
        out.push(cert);
    }
    if out.is_empty() && !text.trim().is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(out)
}

/// PEM text of a DER certificate (64-column base64, as openssl writes it).
pub fn encode(der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = String::with_capacity(b64.len() + 64);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_like_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_certificate_round_trips_through_pem() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ours = encode(cert.der());
        assert_eq!(ours, cert.pem().replace("\r\n", "\n"));
        let two = format!("{ours}{ours}");
        let parsed = certificates(&two).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].der.as_ref(), cert.der().as_ref());
        assert!(parsed[0].is_self_signed());
        assert!(certificates("hello").is_err());
    }
}
