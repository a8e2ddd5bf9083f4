//! Gateway checks: servers with a valid port, protocol and hosts, and TLS
//! settings that can work.

use std::collections::HashMap;

use super::Sink;
use crate::networking::Gateway;
use crate::networking::gateway::ServerTlsMode;

/// Protocols a Gateway server may declare (Istio accepts any case).
const PROTOCOLS: &[&str] = &[
    "HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS",
];

pub(super) fn check(gw: &Gateway, sink: &mut Sink<'_>) {
    if gw.spec.servers.is_empty() {
        sink.error(
            "spec.servers",
            "the Gateway has no servers; add at least one port with its hosts",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, server) in gw.spec.servers.iter().enumerate() {
        let path = format!("spec.servers[{i}]");
        if server.tls.is_some() {
            sink.not_enforced(
                format!("{path}.tls"),
                "`tls` on a gateway server (the gateway serves plaintext HTTP on its listener; \
                 no TLS termination, HTTPS redirect or passthrough)",
            );
        }
        let protocol = match &server.port {
            None => {
                sink.error(
                    format!("{path}.port"),
                    "the server has no port; set port.number, port.name and port.protocol",
                );
                None
            }
            Some(port) => {
                if !(1..=65535).contains(&port.number) {
                    sink.error(
                        format!("{path}.port.number"),
                        format!("port {} is outside 1–65535", port.number),
                    );
                }
                let protocol = port.protocol.to_ascii_uppercase();
                if !PROTOCOLS.contains(&protocol.as_str()) {
                    sink.error(
                        format!("{path}.port.protocol"),
                        format!(
                            "protocol {:?} is not one of {}",
                            port.protocol,
                            PROTOCOLS.join(", ")
                        ),
                    );
                }
                if !port.name.is_empty()
                    && let Some(first) = names.insert(port.name.as_str(), i)
                {
                    sink.error(
                            format!("{path}.port.name"),
                            format!("port name {:?} is also used by spec.servers[{first}]; port names must be unique", port.name),
                        );
                }
                Some(protocol)
            }
        };
        if server.hosts.is_empty() {
            sink.error(
                format!("{path}.hosts"),
                "the server has no hosts; list the hosts it serves (`*` for any)",
            );
        }
        let terminates = matches!(protocol.as_deref(), Some("HTTPS"));
        match &server.tls {
            None if terminates => sink.error(
                format!("{path}.tls"),
                "an HTTPS server needs `tls` (e.g. `mode: SIMPLE` with `credentialName`)",
            ),
            Some(tls) => {
                let needs_cert = matches!(
                    tls.mode,
                    Some(
                        ServerTlsMode::Simple
                            | ServerTlsMode::Mutual
                            | ServerTlsMode::OptionalMutual
                    )
                );
                let has_cert = tls.credential_name.is_some()
                    || !tls.credential_names.is_empty()
                    || !tls.tls_certificates.is_empty()
                    || (tls.server_certificate.is_some() && tls.private_key.is_some());
                if needs_cert && !has_cert {
                    sink.error(
                        format!("{path}.tls"),
                        "TLS mode SIMPLE/MUTUAL needs a certificate: set `credentialName`, or `serverCertificate` and `privateKey`",
                    );
                }
            }
            None => {}
        }
    }
}
