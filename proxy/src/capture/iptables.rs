//! `loupe-proxy iptables`: the capture init command, Istio's
//! `istio-iptables` with its flags. Run as root in the workload's network
//! namespace before the app and the proxy start; it installs the NAT rules
//! in one `iptables-restore --noflush` transaction (all or nothing):
//!
//! - inbound TCP to the app's ports (`-b`, `*` for all but `-d`) →
//!   `ISTIO_IN_REDIRECT` → the inbound listener (`-z`, 15006);
//! - outbound TCP from anyone but the proxy's UID/GID (`-u`/`-g`, 1337) to
//!   the included CIDRs (`-i`, `*` for all; `-x` excluded) →
//!   `ISTIO_REDIRECT` → the outbound listener (`-p`, 15001), with
//!   outbound ports excluded (`-o`) or always included (`-q`); loopback
//!   traffic of the app stays local, and the proxy's own calls to its pod
//!   IP go to the inbound listener, as Istio's rules do;
//! - with `--redirect-dns`, the app's UDP DNS queries → the proxy's DNS
//!   listener (15053).
//!
//! Only `REDIRECT` interception and IPv4 are implemented (`TPROXY` and
//! IPv6 are refused with a message rather than half-done).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use clap::Parser;

use super::{DNS_PORT, INBOUND_PORT, OUTBOUND_PORT, PROXY_UID};

/// Install the sidecar's traffic capture (as Istio's `istio-iptables`).
#[derive(Parser, Debug, Clone)]
#[command(name = "loupe-proxy iptables")]
pub struct Args {
    /// The outbound listener that captured outbound TCP goes to.
    #[arg(short = 'p', long = "envoy-port", default_value_t = OUTBOUND_PORT)]
    pub outbound_port: u16,
    /// The inbound listener that captured inbound TCP goes to.
    #[arg(short = 'z', long = "inbound-capture-port", default_value_t = INBOUND_PORT)]
    pub inbound_port: u16,
    /// The proxy's UID: its own traffic is never captured.
    #[arg(short = 'u', long = "proxy-uid", default_value_t = PROXY_UID)]
    pub proxy_uid: u32,
    /// The proxy's GID: likewise.
    #[arg(short = 'g', long = "proxy-gid", default_value_t = PROXY_UID)]
    pub proxy_gid: u32,
    /// Inbound interception mode; only `REDIRECT` is implemented.
    #[arg(
        short = 'm',
        long = "istio-inbound-interception-mode",
        default_value = "REDIRECT"
    )]
    pub mode: String,
    /// Inbound ports to capture: `*` for all, a comma-separated list, or
    /// empty for none.
    #[arg(
        short = 'b',
        long = "istio-inbound-ports",
        default_value = "*",
        allow_hyphen_values = true
    )]
    pub inbound_ports: String,
    /// Inbound ports never captured (with `-b '*'`): the proxy's own.
    #[arg(short = 'd', long = "istio-local-exclude-ports", default_value = "")]
    pub inbound_exclude_ports: String,
    /// Outbound CIDRs to capture: `*` for all, or a comma-separated list.
    #[arg(short = 'i', long = "istio-service-cidr", default_value = "*")]
    pub include_cidrs: String,
    /// Outbound CIDRs never captured.
    #[arg(short = 'x', long = "istio-service-exclude-cidr", default_value = "")]
    pub exclude_cidrs: String,
    /// Outbound ports never captured.
    #[arg(
        short = 'o',
        long = "istio-local-outbound-ports-exclude",
        default_value = ""
    )]
    pub outbound_exclude_ports: String,
    /// Outbound ports always captured, whatever their CIDR.
    #[arg(short = 'q', long = "istio-outbound-ports", default_value = "")]
    pub outbound_include_ports: String,
    /// Also send the app's DNS queries (UDP 53) to the proxy's DNS listener.
    #[arg(long = "redirect-dns")]
    pub redirect_dns: bool,
    /// The DNS listener's port.
    #[arg(long = "dns-port", default_value_t = DNS_PORT)]
    pub dns_port: u16,
    /// Print the rules instead of installing them.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error(
        "--istio-inbound-interception-mode {0:?}: only REDIRECT is implemented (TPROXY is not)"
    )]
    Mode(String),
    #[error("{flag} {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "cannot run iptables-restore: {0} (install the iptables package, and run as root in the workload's network namespace)"
    )]
    Spawn(std::io::Error),
    #[error("iptables-restore refused the rules (nothing was installed): {0}")]
    Refused(String),
}

fn ports(flag: &'static str, value: &str) -> Result<Vec<u16>, IptablesError> {
    split(value)
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| IptablesError::Flag {
                    flag,
                    value: value.to_string(),
                    reason: format!("{p:?} is not a port"),
                })
        })
        .collect()
}

fn cidrs(flag: &'static str, value: &str) -> Result<Vec<String>, IptablesError> {
    split(value)
        .map(|c| {
            let (ip, len) = c.split_once('/').unwrap_or((c, "32"));
            let ok = ip.parse::<std::net::Ipv4Addr>().is_ok()
                && len.parse::<u8>().is_ok_and(|l| l <= 32);
            if ok {
                Ok(format!("{ip}/{len}"))
            } else {
                Err(IptablesError::Flag {
                    flag,
                    value: value.to_string(),
                    reason: format!("{c:?} is not an IPv4 CIDR (IPv6 capture is not implemented)"),
                })
            }
        })
        .collect()
}

fn split(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl Args {
    /// The `iptables-restore` input that installs the capture.
    pub fn rules(&self) -> Result<String, IptablesError> {
        if !self.mode.eq_ignore_ascii_case("REDIRECT") {
            return Err(IptablesError::Mode(self.mode.clone()));
        }
        let uid = self.proxy_uid;
        let gid = self.proxy_gid;
        let mut r = String::new();
        r.push_str("*nat\n");
        for chain in [
            "ISTIO_INBOUND",
            "ISTIO_REDIRECT",
            "ISTIO_IN_REDIRECT",
            "ISTIO_OUTPUT",
        ] {
            let _ = writeln!(r, ":{chain} - [0:0]");
        }
        let _ = writeln!(
            r,
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.outbound_port
        );
        let _ = writeln!(
            r,
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {}",
            self.inbound_port
        );

        // Inbound.
        let inbound = self.inbound_ports.trim();
        if !inbound.is_empty() {
            r.push_str("-A PREROUTING -p tcp -j ISTIO_INBOUND\n");
            if inbound == "*" {
                // ssh stays reachable, and so do the proxy's own ports.
                let mut skip = vec![22];
                skip.extend(ports("-d", &self.inbound_exclude_ports)?);
                for p in skip {
                    let _ = writeln!(r, "-A ISTIO_INBOUND -p tcp --dport {p} -j RETURN");
                }
                r.push_str("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n");
            } else {
                for p in ports("-b", inbound)? {
                    let _ = writeln!(
                        r,
                        "-A ISTIO_INBOUND -p tcp --dport {p} -j ISTIO_IN_REDIRECT"
                    );
                }
            }
        }

        // Outbound.
        r.push_str("-A OUTPUT -p tcp -j ISTIO_OUTPUT\n");
        for p in ports("-o", &self.outbound_exclude_ports)? {
            let _ = writeln!(r, "-A ISTIO_OUTPUT -p tcp --dport {p} -j RETURN");
        }
        // The inbound side's connections to the app (sourced from 127.0.0.6).
        r.push_str("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n");
        for (kind, id) in [("uid", uid), ("gid", gid)] {
            // The proxy calling its own pod IP: to the inbound side.
            let _ = writeln!(
                r,
                "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --{kind}-owner {id} -j ISTIO_IN_REDIRECT"
            );
            // The app on loopback stays on loopback.
            let _ = writeln!(
                r,
                "-A ISTIO_OUTPUT -o lo -m owner ! --{kind}-owner {id} -j RETURN"
            );
            // The proxy's own traffic goes out as it is.
            let _ = writeln!(r, "-A ISTIO_OUTPUT -m owner --{kind}-owner {id} -j RETURN");
        }
        r.push_str("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n");
        for p in ports("-q", &self.outbound_include_ports)? {
            let _ = writeln!(r, "-A ISTIO_OUTPUT -p tcp --dport {p} -j ISTIO_REDIRECT");
        }
        for c in cidrs("-x", &self.exclude_cidrs)? {
            let _ = writeln!(r, "-A ISTIO_OUTPUT -d {c} -j RETURN");
        }
        let include = self.include_cidrs.trim();
        if include == "*" {
            r.push_str("-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n");
        } else {
            for c in cidrs("-i", include)? {
                let _ = writeln!(r, "-A ISTIO_OUTPUT -d {c} -j ISTIO_REDIRECT");
            }
        }

        // DNS: the app's queries to the proxy; the proxy's own go out.
        if self.redirect_dns {
            for (kind, id) in [("uid", uid), ("gid", gid)] {
                let _ = writeln!(
                    r,
                    "-A OUTPUT -p udp --dport 53 -m owner --{kind}-owner {id} -j RETURN"
                );
            }
            let _ = writeln!(
                r,
                "-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports {}",
                self.dns_port
            );
        }
        r.push_str("COMMIT\n");
        Ok(r)
    }

    /// Installs the rules (or prints them with `--dry-run`).
    pub fn run(&self) -> Result<(), IptablesError> {
        let rules = self.rules()?;
        if self.dry_run {
            print!("{rules}");
            return Ok(());
        }
        let mut child = Command::new("iptables-restore")
            .arg("--noflush")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(IptablesError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(rules.as_bytes())
                .map_err(IptablesError::Spawn)?;
        }
        let out = child.wait_with_output().map_err(IptablesError::Spawn)?;
        if !out.status.success() {
            return Err(IptablesError::Refused(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["iptables"];
        argv.extend(extra);
        Args::try_parse_from(argv).expect("parses")
    }

    #[test]
    fn istio_injector_command_line_gives_istio_rules() {
        let a = args(&[
            "-p",
            "15001",
            "-z",
            "15006",
            "-u",
            "1337",
            "-m",
            "REDIRECT",
            "-i",
            "*",
            "-x",
            "",
            "-b",
            "*",
            "-d",
            "15090,15021,15020",
        ]);
        let rules = a.rules().unwrap();
        for line in [
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
            "-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN",
            "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN",
            "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT",
            "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
            "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
            "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
        ] {
            assert!(
                rules.lines().any(|l| l == line),
                "missing {line:?} in\n{rules}"
            );
        }
        // The proxy's own traffic returns before anything is redirected.
        let pos = |l: &str| rules.find(l).unwrap();
        assert!(pos("--uid-owner 1337 -j RETURN") < pos("-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
        assert!(rules.ends_with("COMMIT\n"));
        assert!(!rules.contains("udp"), "no DNS capture unless asked");
    }

    #[test]
    fn port_and_cidr_lists_and_dns() {
        let a = args(&[
            "-b",
            "9080,5432",
            "-i",
            "10.96.0.0/16",
            "-x",
            "10.96.0.9",
            "-o",
            "3306",
            "-q",
            "6379",
            "--redirect-dns",
        ]);
        let rules = a.rules().unwrap();
        for line in [
            "-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT",
            "-A ISTIO_INBOUND -p tcp --dport 5432 -j ISTIO_IN_REDIRECT",
            "-A ISTIO_OUTPUT -d 10.96.0.0/16 -j ISTIO_REDIRECT",
            "-A ISTIO_OUTPUT -d 10.96.0.9/32 -j RETURN",
            "-A ISTIO_OUTPUT -p tcp --dport 3306 -j RETURN",
            "-A ISTIO_OUTPUT -p tcp --dport 6379 -j ISTIO_REDIRECT",
            "-A OUTPUT -p udp --dport 53 -m owner --uid-owner 1337 -j RETURN",
            "-A OUTPUT -p udp --dport 53 -j REDIRECT --to-ports 15053",
        ] {
            assert!(
                rules.lines().any(|l| l == line),
                "missing {line:?} in\n{rules}"
            );
        }
        assert!(!rules.contains("-j ISTIO_REDIRECT\n-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
    }

    #[test]
    fn bad_flags_are_named() {
        let e = args(&["-m", "TPROXY"]).rules().unwrap_err().to_string();
        assert!(e.contains("only REDIRECT"), "{e}");
        let e = args(&["-b", "80,http"]).rules().unwrap_err().to_string();
        assert!(
            e.contains("-b") && e.contains("\"http\" is not a port"),
            "{e}"
        );
        let e = args(&["-i", "fd00::/8"]).rules().unwrap_err().to_string();
        assert!(e.contains("IPv6"), "{e}");
    }
}
