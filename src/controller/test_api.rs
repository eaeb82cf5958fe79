//! A recording API server for the controller's narrow unit tests: `answer` gives each
//! request's status and body from its method, path and body; every request is logged as
//! "METHOD path".

use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;

pub type Log = Arc<Mutex<Vec<String>>>;

pub fn api(
    answer: impl Fn(&Method, &str, &[u8]) -> (StatusCode, Vec<u8>) + Send + 'static,
) -> (Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Log = Arc::new(Mutex::new(vec![]));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            if let Ok(mut l) = log.lock() {
                l.push(format!("{method} {path}"));
            }
            let body = request
                .into_body()
                .collect_bytes()
                .await
                .unwrap_or_default();
            let (status, bytes) = answer(&method, &path, &body);
            if let Ok(r) = Response::builder().status(status).body(Body::from(bytes)) {
                send.send_response(r);
            }
        }
    });
    (Client::new(service, "default"), seen)
}

pub fn logged(log: &Log) -> Vec<String> {
    log.lock().map(|l| l.clone()).unwrap_or_default()
}
