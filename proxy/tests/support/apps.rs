//! Upstream HTTP apps that answer with their workload name and record
//! what they received.

#![allow(dead_code)]

use super::*;

/// What an upstream app saw of one request.
#[derive(Clone, Debug)]
pub struct Seen1 {
    pub path: String,
    pub headers: http::HeaderMap,
}

/// An HTTP app that answers `NAME` (its workload) and records requests.
pub struct App {
    pub addr: SocketAddr,
    pub name: String,
    pub requests: Arc<Mutex<Vec<Seen1>>>,
}

impl App {
    pub async fn start(name: &str) -> App {
        Self::start_with(name, 200).await
    }

    /// An app that answers every request with `status`.
    pub async fn start_with(name: &str, status: u16) -> App {
        let listener = TcpListener::bind(addr(0)).await.expect("bind app");
        let local = listener.local_addr().expect("app addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (rec, body_name) = (requests.clone(), name.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (rec, body_name) = (rec.clone(), body_name.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (rec, body_name) = (rec.clone(), body_name.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            rec.lock().expect("rec").push(Seen1 {
                                path: path.clone(),
                                headers: req.headers().clone(),
                            });
                            // `/echo` answers with the request body; `/slow` after 500 ms.
                            let body = match path.as_str() {
                                "/echo" => req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default(),
                                "/slow" => {
                                    tokio::time::sleep(Duration::from_millis(500)).await;
                                    Bytes::from(body_name)
                                }
                                _ => Bytes::from(body_name),
                            };
                            let mut resp = Response::new(Full::new(body));
                            *resp.status_mut() =
                                http::StatusCode::from_u16(status).expect("status");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        App {
            addr: local,
            name: name.to_string(),
            requests,
        }
    }

    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }

    pub fn last(&self) -> Option<Seen1> {
        self.requests.lock().expect("requests").last().cloned()
    }
}
