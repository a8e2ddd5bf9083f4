//! What can go wrong loading the CA or signing with it, each with the file
//! or the identity involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    BadFile { path: PathBuf, problem: String },
    #[error(
        "{dir} holds only part of a CA ({present} without {missing}): restore the missing file, or move the directory away to generate a new root"
    )]
    Incomplete {
        dir: PathBuf,
        present: &'static str,
        missing: &'static str,
    },
    #[error("the certificate signing request is not a valid PEM PKCS#10 CSR: {0}")]
    BadCsr(String),
    #[error("the CSR asks for {requested} but the credential is for {authenticated}")]
    WrongIdentity {
        requested: String,
        authenticated: String,
    },
    #[error("signing a certificate for {subject} failed: {source}")]
    Sign {
        subject: String,
        #[source]
        source: rcgen::Error,
    },
}
