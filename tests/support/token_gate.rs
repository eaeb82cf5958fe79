//! A gate in front of Prometheus that lets a request through only with the expected bearer
//! token, as an authenticating proxy would; it counts what it passed and refused. Every
//! request gets its own connection (`Connection: close`), so each one is checked.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct TokenGate {
    pub url: String,
    pub passed: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
}

impl TokenGate {
    pub fn start(upstream: &str, token: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token gate");
        let url = format!("http://{}", listener.local_addr().expect("gate address"));
        let (passed, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (p, r) = (passed.clone(), refused.clone());
        let expected = format!("bearer {token}");
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, expected, p, r) =
                    (upstream.clone(), expected.clone(), p.clone(), r.clone());
                std::thread::spawn(move || serve(client, &upstream, &expected, &p, &r));
            }
        });
        TokenGate {
            url,
            passed,
            refused,
        }
    }

    pub fn passed(&self) -> usize {
        self.passed.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

fn serve(
    mut client: TcpStream,
    upstream: &str,
    expected: &str,
    passed: &AtomicUsize,
    refused: &AtomicUsize,
) {
    // Read up to the end of the request head; any body bytes after it are forwarded as read.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let authorized = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && v.trim().eq_ignore_ascii_case(expected)
        })
    });
    if !authorized {
        refused.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"status":"error","errorType":"unauthorized","error":"missing or wrong bearer token"}"#;
        let _ = write!(
            client,
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    passed.fetch_add(1, Ordering::Relaxed);
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let rewritten: String = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect::<String>()
        + "Connection: close\r\n\r\n";
    if server.write_all(rewritten.as_bytes()).is_err()
        || server.write_all(&buf[head_end..]).is_err()
    {
        return;
    }
    let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upload = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = upload.join();
}
