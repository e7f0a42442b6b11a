//! A fake provider for the `send` tests: a real HTTP server on 127.0.0.1:0
//! that records every request and answers with a canned status and body.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, Method, StatusCode, Uri},
    response::IntoResponse,
    Router,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the fake provider received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).expect("request body is a form")
    }
}

#[derive(Clone)]
struct Canned {
    status: StatusCode,
    body: &'static str,
    delay: Duration,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
}

pub struct FakeProvider {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base_url: String,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl FakeProvider {
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.seen.lock().unwrap().clone()
    }

    pub fn only_request(&self) -> RecordedRequest {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().unwrap()
    }
}

/// Starts a provider that answers every request with `status` and `body`.
pub async fn fake_provider(status: u16, body: &'static str) -> FakeProvider {
    slow_fake_provider(status, body, Duration::ZERO).await
}

/// Like [`fake_provider`], but waits `delay` before answering.
pub async fn slow_fake_provider(status: u16, body: &'static str, delay: Duration) -> FakeProvider {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let canned = Canned {
        status: StatusCode::from_u16(status).unwrap(),
        body,
        delay,
        seen: seen.clone(),
    };
    let app = Router::new().fallback(answer).with_state(canned);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeProvider {
        base_url: format!("http://{address}"),
        seen,
    }
}

async fn answer(
    State(canned): State<Canned>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    canned.seen.lock().unwrap().push(RecordedRequest {
        method,
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
    tokio::time::sleep(canned.delay).await;
    (
        canned.status,
        [(header::CONTENT_TYPE, "application/json")],
        canned.body,
    )
}

/// A base URL where nothing listens: sends to it fail to connect.
pub async fn closed_base_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// A client like production's, with a short timeout so a hung test fails fast.
pub fn test_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}
