//! A provider outage on demand: a TCP front in front of the fake providers
//! (`serve_helpers::start_fake_providers`) that answers a send with a 500, a 429
//! with `Retry-After`, holds it past the client's timeout, or resets the
//! connection (before or after the fake took the send), by a script per
//! recipient or for a window of time, and logs every attempt it saw.
//!
//! Each connection carries one request: the front adds `Connection: close`
//! before forwarding, so the fake answers and closes, and the client opens a
//! fresh connection (through the front again) for the next send.

use crate::serve_helpers::{start_fake_providers, FakeProviders};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the front does with one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with a transient Graph error body.
    ServerError,
    /// HTTP 429 with `Retry-After: seconds`.
    RateLimited(u64),
    /// The provider takes the message (the fake records it) and never answers.
    AcceptThenHang,
    /// Nothing is taken and nothing answered, until the client gives up.
    Hang,
    /// The request is read, nothing is taken, the connection is reset.
    Reset,
    /// The provider takes the message (the fake records it and answers), and
    /// the connection is reset before that answer reaches the client.
    AcceptThenReset,
}

/// One send the front saw: to whom (the scripted recipient it named, or
/// `""`), when, and what it did with it (`None`: passed to the fake).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub recipient: String,
    pub at: Instant,
    pub fault: Option<Fault>,
}

/// Every send for `until` gets `fault`; the first `hang_first` of them hang instead.
#[derive(Debug, Clone)]
pub struct Outage {
    pub until: Instant,
    pub fault: Fault,
    pub hang_first: usize,
}

#[derive(Default)]
struct Plan {
    /// Faults by recipient (found in the request: the WhatsApp wa_id, the
    /// phone number without its `+`), one per attempt, in order; then the
    /// sends pass.
    scripts: HashMap<String, VecDeque<Fault>>,
    outage: Option<Outage>,
    attempts: Vec<Attempt>,
}

#[derive(Clone)]
pub struct FaultyProviders {
    pub fake: FakeProviders,
    plan: Arc<Mutex<Plan>>,
    /// Requests held open right now (hangs).
    pub hanging: Arc<Mutex<usize>>,
}

impl FaultyProviders {
    /// The faults `recipient`'s next sends meet, one per attempt.
    pub fn script(&self, recipient: &str, faults: &[Fault]) {
        self.plan
            .lock()
            .unwrap()
            .scripts
            .insert(recipient.to_string(), faults.iter().copied().collect());
    }

    pub fn outage(&self, outage: Outage) {
        self.plan.lock().unwrap().outage = Some(outage);
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.plan.lock().unwrap().attempts.clone()
    }

    /// The attempts for `recipient`.
    pub fn attempts_to(&self, recipient: &str) -> Vec<Attempt> {
        self.attempts()
            .into_iter()
            .filter(|a| a.recipient == recipient)
            .collect()
    }

    fn decide(&self, request: &str) -> Option<Fault> {
        let mut plan = self.plan.lock().unwrap();
        // Faults are for sends; the Twilio listing (a GET) always passes.
        if !request.starts_with("POST ") {
            return None;
        }
        let recipient = plan
            .scripts
            .keys()
            // Without the `+`: Twilio's form encodes it as `%2B`.
            .find(|key| request.contains(key.trim_start_matches('+')))
            .cloned();
        let scripted = recipient
            .as_ref()
            .and_then(|r| plan.scripts.get_mut(r))
            .and_then(|faults| faults.pop_front());
        let fault = scripted.or_else(|| match &mut plan.outage {
            Some(outage) if Instant::now() < outage.until => {
                if outage.hang_first > 0 {
                    outage.hang_first -= 1;
                    Some(Fault::Hang)
                } else {
                    Some(outage.fault)
                }
            }
            _ => None,
        });
        plan.attempts.push(Attempt {
            recipient: recipient.unwrap_or_default(),
            at: Instant::now(),
            fault,
        });
        fault
    }
}

/// The fake providers behind a faulty front; returns the front's base URL.
pub async fn start_faulty_providers() -> (String, FaultyProviders) {
    let (backend, fake) = start_fake_providers().await;
    let backend = backend.trim_start_matches("http://").to_string();
    let faulty = FaultyProviders {
        fake,
        plan: Arc::default(),
        hanging: Arc::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let front = faulty.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (front, backend) = (front.clone(), backend.clone());
            tokio::spawn(async move {
                let _ = serve_one(front, client, &backend).await;
            });
        }
    });
    (base, faulty)
}

/// Reads one HTTP request (head and `Content-Length` body).
async fn read_request(client: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return Ok(bytes);
            }
        }
        let read = client.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
}

/// Holds the connection open until the client closes it (or two minutes pass).
async fn hold(front: &FaultyProviders, client: &mut TcpStream) {
    *front.hanging.lock().unwrap() += 1;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(120), async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    *front.hanging.lock().unwrap() -= 1;
}

fn answer(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Forwards the request to the fake with `Connection: close`; returns the
/// connection to the fake, its answer still to be read.
async fn forward(request: &[u8], backend: &str) -> std::io::Result<TcpStream> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let mut upstream = TcpStream::connect(backend).await?;
    let head = String::from_utf8_lossy(&request[..end]);
    let head: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    upstream
        .write_all(format!("{}\r\nconnection: close\r\n\r\n", head.join("\r\n")).as_bytes())
        .await?;
    upstream.write_all(&request[end + 4..]).await?;
    Ok(upstream)
}

async fn serve_one(
    front: FaultyProviders,
    mut client: TcpStream,
    backend: &str,
) -> std::io::Result<()> {
    let request = read_request(&mut client).await?;
    let fault = front.decide(&String::from_utf8_lossy(&request));
    match fault {
        None => {
            let mut upstream = forward(&request, backend).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        }
        Some(Fault::ServerError) => {
            let body = r#"{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"is_transient":true}}"#;
            client
                .write_all(answer("500 Internal Server Error", "", body).as_bytes())
                .await?;
        }
        Some(Fault::RateLimited(seconds)) => {
            let body = r#"{"error":{"message":"(#80007) Rate limit hit","code":80007}}"#;
            let retry_after = format!("retry-after: {seconds}\r\n");
            client
                .write_all(answer("429 Too Many Requests", &retry_after, body).as_bytes())
                .await?;
        }
        Some(Fault::AcceptThenHang) => {
            let mut upstream = forward(&request, backend).await?;
            let mut taken = Vec::new();
            upstream.read_to_end(&mut taken).await?;
            hold(&front, &mut client).await;
        }
        Some(Fault::Hang) => hold(&front, &mut client).await,
        Some(Fault::AcceptThenReset) => {
            let mut upstream = forward(&request, backend).await?;
            let mut taken = Vec::new();
            upstream.read_to_end(&mut taken).await?;
            client.set_zero_linger()?;
            drop(client);
        }
        Some(Fault::Reset) => {
            // SO_LINGER 0: closing sends RST instead of FIN.
            client.set_zero_linger()?;
            drop(client);
        }
    }
    Ok(())
}
