//! The traffic listeners of one proxy — a sidecar's inbound and outbound,
//! a gateway's, or capture's 15001 and 15006 — bound once per worker
//! ([`crate::workers`]), and what one worker serves on its sockets: the
//! same handlers as every other worker, with upstream pools of its own.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::StartError;
use crate::capture;
use crate::cli::Args;
use crate::context::ProxyContext;
use crate::inbound::Inbound;
use crate::listen::{self, Accept, Limits, Listener, MeshAccept};
use crate::outbound::Traffic;
use crate::workers;

/// One traffic listener: a socket per worker, one connection cap.
struct Bound {
    name: &'static str,
    /// Moved to the workers one by one: each socket has one worker.
    sockets: Vec<Option<std::net::TcpListener>>,
    open: Arc<Semaphore>,
}

impl Bound {
    fn bind(
        name: &'static str,
        addr: std::net::SocketAddr,
        workers: usize,
        limits: Limits,
    ) -> Result<Bound, StartError> {
        Ok(Bound {
            name,
            sockets: workers::bind(name, addr, workers)?
                .into_iter()
                .map(Some)
                .collect(),
            open: Arc::new(Semaphore::new(limits.max_connections)),
        })
    }

    fn address(&self) -> String {
        self.sockets
            .iter()
            .flatten()
            .find_map(|s| s.local_addr().ok())
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// Worker `i`'s socket, taken (each is served by one worker only).
    fn take(&mut self, i: usize) -> Option<OneSocket> {
        let socket = self.sockets.get_mut(i)?.take()?;
        Some(OneSocket {
            name: self.name,
            socket,
            open: self.open.clone(),
        })
    }
}

/// One worker's socket of one listener.
struct OneSocket {
    name: &'static str,
    socket: std::net::TcpListener,
    open: Arc<Semaphore>,
}

impl OneSocket {
    /// Registers the socket with the calling (the worker's) runtime.
    fn listener(self) -> Option<Listener> {
        match TcpListener::from_std(self.socket) {
            Ok(socket) => Some(Listener {
                socket,
                name: self.name,
                open: self.open,
            }),
            Err(error) => {
                tracing::error!(listener = self.name, %error, "a worker cannot serve its socket");
                None
            }
        }
    }
}

/// Every traffic listener the flags ask for, bound.
pub struct TrafficListeners {
    inbound: Option<(Bound, http::uri::Authority)>,
    outbound: Option<Bound>,
    gateway: Option<Bound>,
    /// Capture's outbound (15001) and inbound (15006).
    capture: Option<(Bound, Bound)>,
    policy: capture::outbound::OutboundTrafficPolicy,
    limits: Limits,
    workers: usize,
}

impl TrafficListeners {
    /// Binds every traffic listener `args` asks for, once per worker.
    pub fn bind(args: &Args) -> Result<TrafficListeners, StartError> {
        let workers = args.workers();
        let limits = args.limits();
        let inbound = match (args.inbound, &args.app) {
            (Some(addr), Some(app)) => {
                let app = http::uri::Authority::try_from(app.as_str())
                    .ok()
                    .filter(|a| a.port_u16().is_some())
                    .ok_or_else(|| StartError::App(app.clone()))?;
                Some((Bound::bind("inbound", addr, workers, limits)?, app))
            }
            _ => None,
        };
        let outbound = args
            .outbound
            .map(|addr| Bound::bind("outbound", addr, workers, limits))
            .transpose()?;
        let gateway = match (args.gateway, args.listen) {
            (true, Some(addr)) => Some(Bound::bind("gateway", addr, workers, limits)?),
            _ => None,
        };
        let capture = if args.capture {
            Some((
                Bound::bind(
                    "outbound",
                    capture::any(capture::OUTBOUND_PORT),
                    workers,
                    limits,
                )?,
                Bound::bind(
                    "inbound",
                    capture::any(capture::INBOUND_PORT),
                    workers,
                    limits,
                )?,
            ))
        } else {
            None
        };
        Ok(TrafficListeners {
            inbound,
            outbound,
            gateway,
            capture,
            policy: args.outbound_traffic_policy,
            limits,
            workers,
        })
    }

    /// Where other proxies reach this workload: the inbound listener, else
    /// the gateway's ("" in capture mode: the registry knows the pod's IP).
    pub fn inbound_address(&self) -> String {
        match (&self.inbound, &self.gateway) {
            (Some((bound, _)), _) => bound.address(),
            (None, Some(bound)) => bound.address(),
            (None, None) => String::new(),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Worker `i`'s share: its socket of every listener.
    pub fn worker(&mut self, i: usize, ctx: Arc<ProxyContext>) -> Worker {
        Worker {
            inbound: self
                .inbound
                .as_mut()
                .and_then(|(b, app)| Some((b.take(i)?, app.clone()))),
            outbound: self.outbound.as_mut().and_then(|b| b.take(i)),
            gateway: self.gateway.as_mut().and_then(|b| b.take(i)),
            capture: self
                .capture
                .as_mut()
                .and_then(|(o, n)| Some((o.take(i)?, n.take(i)?))),
            policy: self.policy,
            limits: self.limits,
            ctx,
        }
    }
}

/// What one worker serves.
pub struct Worker {
    inbound: Option<(OneSocket, http::uri::Authority)>,
    outbound: Option<OneSocket>,
    gateway: Option<OneSocket>,
    capture: Option<(OneSocket, OneSocket)>,
    policy: capture::outbound::OutboundTrafficPolicy,
    limits: Limits,
    ctx: Arc<ProxyContext>,
}

impl Worker {
    /// Serves every socket of this worker on the calling runtime until
    /// `drain` turns true and their connections have finished.
    pub async fn serve(self, drain: watch::Receiver<bool>) {
        let Worker {
            inbound,
            outbound,
            gateway,
            capture,
            policy,
            limits,
            ctx,
        } = self;
        let metrics = ctx.metrics.clone();
        let mut tasks = Vec::new();
        if let Some((listener, app)) = inbound.and_then(|(s, app)| Some((s.listener()?, app))) {
            let port = app.port_u16().unwrap_or(80);
            let accept = Accept::Mesh(Arc::new(MeshAccept::new(&ctx, port)));
            let state = Arc::new(Inbound {
                ctx: ctx.clone(),
                app,
            });
            tasks.push(tokio::spawn(listen::serve(
                listener,
                drain.clone(),
                accept,
                limits,
                metrics.clone(),
                move |req, peer| crate::inbound::handle(state.clone(), req, peer),
            )));
        }
        for (socket, traffic) in [(outbound, Traffic::Sidecar), (gateway, Traffic::Gateway)] {
            let Some(listener) = socket.and_then(OneSocket::listener) else {
                continue;
            };
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(listen::serve(
                listener,
                drain.clone(),
                Accept::Plain,
                limits,
                metrics.clone(),
                move |req, peer| crate::outbound::handle(ctx.clone(), traffic, req, peer),
            )));
        }
        if let Some((outbound, inbound)) =
            capture.and_then(|(o, n)| Some((o.listener()?, n.listener()?)))
        {
            tasks.extend(capture::serve_traffic(
                &ctx, policy, outbound, inbound, &drain, limits,
            ));
        }
        drop(ctx);
        futures::future::join_all(tasks).await;
    }
}
