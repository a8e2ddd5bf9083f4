//! Thread per core for the data path, as Envoy's workers: `--concurrency`
//! threads, each running a single-threaded tokio runtime with its own
//! socket on every traffic listener (`SO_REUSEPORT`, so the kernel spreads
//! connections over the workers) and its own upstream pools. A connection,
//! its requests and the upstream connections they go over then stay on one
//! thread: no cross-thread wake-up per request, as a work-stealing runtime
//! pays when the HTTP/2 connection task and a request's task run on
//! different threads. The control-plane client, the span exporter and the
//! admin listener run on the main thread's runtime; what the workers share
//! with it (config, credentials, metrics) is lock-free to read.

use std::future::Future;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::oneshot;

use crate::StartError;

/// The backlog of every traffic listener's socket.
const BACKLOG: i32 = 1024;

/// Binds `addr` once per worker: `workers` sockets on one port with
/// `SO_REUSEPORT` (port 0 picks a free port for the first, the others
/// join it). One worker gets one plain socket.
pub fn bind(
    listener: &'static str,
    addr: SocketAddr,
    workers: usize,
) -> Result<Vec<std::net::TcpListener>, StartError> {
    let error = |source| StartError::Bind {
        listener,
        addr,
        source,
    };
    let mut at = addr;
    let mut sockets = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        let socket = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP))
            .map_err(error)?;
        socket.set_reuse_address(true).map_err(error)?;
        if workers > 1 {
            socket.set_reuse_port(true).map_err(error)?;
        }
        socket.set_nonblocking(true).map_err(error)?;
        socket.bind(&at.into()).map_err(error)?;
        socket.listen(BACKLOG).map_err(error)?;
        let socket = std::net::TcpListener::from(socket);
        at = socket.local_addr().map_err(error)?;
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Starts worker `index`: a thread with a single-threaded runtime that
/// runs what `serve` gives (built on that thread, so its sockets and
/// tasks belong to that runtime) to its end. The receiver fires then.
pub fn spawn<S, F>(index: usize, serve: S) -> std::io::Result<oneshot::Receiver<()>>
where
    S: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("loupe-worker-{index}"))
        .spawn(move || {
            runtime.block_on(async move { serve().await });
            // Connections that outlived the drain are not waited for.
            runtime.shutdown_background();
            let _ = done.send(());
        })?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_share_one_port_picked_for_the_first() {
        let sockets = bind("test", "127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let ports: Vec<u16> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), 3);
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }

    #[test]
    fn a_port_in_use_by_another_socket_is_a_bind_error_naming_the_listener() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind("inbound", addr, 2).unwrap_err().to_string();
        assert!(
            error.contains("inbound") && error.contains(&addr.to_string()),
            "{error}"
        );
    }
}
