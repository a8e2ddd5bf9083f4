//! Mesh mTLS. The workload's certificate is issued by the control plane's
//! CA from a CSR this proxy makes ([`issue`]); the private key never leaves
//! the process. Each issued certificate is turned once into the rustls
//! configurations both sides use ([`credentials`]): the inbound acceptor,
//! which requires a client certificate of the mesh, and the outbound
//! connector's, which verifies the server's chain and then checks its
//! SPIFFE ID against the identity the endpoint registered under
//! ([`verify`], Istio's secure naming). TLS to destinations outside the
//! mesh (DestinationRule `SIMPLE`/`MUTUAL`) is [`origination`].

pub mod alpn;
pub mod credentials;
pub mod issue;
pub mod origination;
pub mod verify;

pub use credentials::{CredentialStore, Credentials};
pub use verify::PeerIdentity;
