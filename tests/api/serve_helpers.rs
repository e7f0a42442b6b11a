//! Spawning the real service on a random port, with fake providers that check
//! auth the way the real APIs do and record every send.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk::assistant::Assistant;
use frontdesk::config::{Secret, Settings};
use frontdesk::startup::{self, Application, Paths};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const APP_SECRET: &str = "test-app-secret";
pub const ACCESS_TOKEN: &str = "test-access-token";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const TWILIO_SID: &str = "AC00000000000000000000000000000000";
pub const TWILIO_TOKEN: &str = "test-twilio-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// One request a fake provider accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    pub provider: &'static str,
    pub to: String,
    pub text: String,
    /// When the fake took it, in ms since the Unix epoch (the store's clock).
    pub at_ms: i64,
    /// The id the fake answered with (a wamid, a Twilio sid).
    pub provider_id: String,
    /// WhatsApp: the send's `biz_opaque_callback_data` (every WhatsApp send
    /// must carry one; the fake refuses a send without it).
    pub callback_data: Option<String>,
}

/// A file a fake provider serves: its content type and bytes.
pub type MediaFile = (String, Vec<u8>);

#[derive(Clone, Default)]
pub struct FakeProviders {
    pub sent: Arc<Mutex<Vec<Sent>>>,
    pub refused: Arc<Mutex<usize>>,
    /// Files by id (content type, bytes): WhatsApp media (bearer token),
    /// Twilio media (basic auth, redirecting to `/cdn/{id}`), and `/cdn/{id}`
    /// itself (no auth, as Messenger's signed URLs).
    pub media: Arc<Mutex<HashMap<String, MediaFile>>>,
    /// Media downloads refused for wrong or missing credentials.
    pub media_refused: Arc<Mutex<usize>>,
    /// Twilio message listings asked for (reconciling an unanswered send).
    pub listings: Arc<Mutex<usize>>,
}

impl FakeProviders {
    pub fn sends(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// Serves `bytes` as `content_type` under the media id `id`.
    pub fn add_media(&self, id: &str, content_type: &str, bytes: &[u8]) {
        self.media
            .lock()
            .unwrap()
            .insert(id.to_string(), (content_type.to_string(), bytes.to_vec()));
    }

    fn media_file(&self, id: &str) -> Response {
        match self.media.lock().unwrap().get(id) {
            Some((content_type, bytes)) => {
                ([("content-type", content_type.clone())], bytes.clone()).into_response()
            }
            None => (StatusCode::NOT_FOUND, "no such media").into_response(),
        }
    }

    fn refuse_media(&self) -> Response {
        *self.media_refused.lock().unwrap() += 1;
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": {"message": "Invalid OAuth access token", "code": 190}})),
        )
            .into_response()
    }
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {ACCESS_TOKEN}"))
}

/// WhatsApp's media lookup: `GET /{version}/{media_id}` with the bearer token
/// answers the file's (short-lived) URL.
async fn graph_media_info(
    State(fake): State<FakeProviders>,
    Path((_version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !bearer_ok(&headers) {
        return fake.refuse_media();
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime_type = match fake.media.lock().unwrap().get(&media_id) {
        Some((content_type, _)) => content_type.clone(),
        None => return (StatusCode::NOT_FOUND, "no such media").into_response(),
    };
    Json(serde_json::json!({
        "messaging_product": "whatsapp",
        "url": format!("http://{host}/whatsapp-media/{media_id}"),
        "mime_type": mime_type,
        "id": media_id,
    }))
    .into_response()
}

/// The file behind a WhatsApp media URL: the bearer token is needed here too.
async fn graph_media_file(
    State(fake): State<FakeProviders>,
    Path(media_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !bearer_ok(&headers) {
        return fake.refuse_media();
    }
    fake.media_file(&media_id)
}

/// Twilio's `MediaUrlN`: basic auth, then a redirect to where the file is.
async fn twilio_media(
    State(fake): State<FakeProviders>,
    Path((sid, _message, media_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    let auth_ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !auth_ok || sid != TWILIO_SID {
        return fake.refuse_media();
    }
    (
        StatusCode::TEMPORARY_REDIRECT,
        [("location", format!("/cdn/{media_id}"))],
    )
        .into_response()
}

async fn cdn_file(State(fake): State<FakeProviders>, Path(media_id): Path<String>) -> Response {
    fake.media_file(&media_id)
}

async fn graph_send(
    State(fake): State<FakeProviders>,
    Path((_version, phone_id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    let auth_ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {ACCESS_TOKEN}"));
    // WhatsApp posts to /{phone_number_id}/messages; the Messenger Send API to /me/messages.
    let (provider, to, text, shape_ok) = if phone_id == "me" {
        // A plain response, or a person's reply after 24 hours with the HUMAN_AGENT tag.
        let tagged = body["messaging_type"] == "MESSAGE_TAG" && body["tag"] == "HUMAN_AGENT";
        let ok = body["recipient"]["id"].is_string()
            && (body["messaging_type"] == "RESPONSE" || tagged)
            && body["message"]["text"].is_string();
        (
            "messenger",
            body["recipient"]["id"].as_str(),
            body["message"]["text"].as_str(),
            ok,
        )
    } else {
        // Free text, or an approved template (recorded as `template:<name>`).
        let text_ok = body["type"] == "text" && body["text"]["body"].is_string();
        let template_ok = body["type"] == "template"
            && body["template"]["name"].is_string()
            && body["template"]["language"]["code"].is_string();
        // Our outbox id, echoed in the message's status webhooks.
        let callback_ok = body["biz_opaque_callback_data"]
            .as_str()
            .is_some_and(|data| !data.is_empty() && data.len() <= 512);
        let ok = phone_id == PHONE_NUMBER_ID
            && body["messaging_product"] == "whatsapp"
            && callback_ok
            && (text_ok || template_ok);
        let text = if template_ok {
            body["template"]["name"]
                .as_str()
                .map(|name| format!("template:{name}"))
        } else {
            body["text"]["body"].as_str().map(str::to_string)
        };
        if body["to"] == REFUSING_CUSTOMER && !template_ok && auth_ok {
            // As WhatsApp answers a free-form send outside the 24-hour window.
            *fake.refused.lock().unwrap() += 1;
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    serde_json::json!({"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
                    "error_data": {"messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}}),
                ),
            );
        }
        return record_graph_send(
            &fake,
            "whatsapp",
            body["to"].as_str(),
            text.as_deref(),
            body["biz_opaque_callback_data"].as_str(),
            auth_ok && ok,
        );
    };
    record_graph_send(&fake, provider, to, text, None, auth_ok && shape_ok)
}

/// A WhatsApp customer for whom the fake refuses free text with error 131047.
pub const REFUSING_CUSTOMER: &str = "15550131047";

fn record_graph_send(
    fake: &FakeProviders,
    provider: &'static str,
    to: Option<&str>,
    text: Option<&str>,
    callback_data: Option<&str>,
    accepted: bool,
) -> (StatusCode, Json<serde_json::Value>) {
    if !accepted {
        *fake.refused.lock().unwrap() += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": {"message": "bad request", "code": 190}})),
        );
    }
    let mut sent = fake.sent.lock().unwrap();
    let number = sent.len() + 1;
    let id = if provider == "whatsapp" {
        format!("wamid.out.{number}")
    } else {
        format!("{provider}.out.{number}")
    };
    sent.push(Sent {
        provider,
        to: to.unwrap_or("").into(),
        text: text.unwrap_or("").into(),
        at_ms: frontdesk::store::now_ms(),
        provider_id: id.clone(),
        callback_data: callback_data.map(str::to_string),
    });
    (
        StatusCode::OK,
        Json(
            serde_json::json!({"messaging_product": "whatsapp", "recipient_id": to, "message_id": id, "messages": [{"id": id}]}),
        ),
    )
}

async fn twilio_send(
    State(fake): State<FakeProviders>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let auth_ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if !auth_ok || sid.trim_end_matches(".json") != TWILIO_SID || field("Body").is_empty() {
        *fake.refused.lock().unwrap() += 1;
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"code": 20003, "message": "Authenticate"})),
        );
    }
    let mut sent = fake.sent.lock().unwrap();
    let sid = twilio_sid(sent.len() + 1);
    sent.push(Sent {
        provider: "twilio",
        to: field("To"),
        text: field("Body"),
        at_ms: frontdesk::store::now_ms(),
        provider_id: sid,
        callback_data: None,
    });
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"sid": twilio_sid(sent.len()), "status": "queued"})),
    )
}

/// The sid the fake gives the `n`th message it took (counting from 1).
fn twilio_sid(n: usize) -> String {
    format!("SM{n:032}")
}

/// Twilio's message list, newest first, filtered by `To` and `From` as the real
/// API does (the fake sends every message from the one configured number).
async fn twilio_list(
    State(fake): State<FakeProviders>,
    Path(sid): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> (StatusCode, Json<serde_json::Value>) {
    if sid.trim_end_matches(".json") != TWILIO_SID {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"code": 20404, "message": "not found"})),
        );
    }
    *fake.listings.lock().unwrap() += 1;
    let sent = fake.sent.lock().unwrap();
    let messages: Vec<serde_json::Value> = sent
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, s)| s.provider == "twilio")
        .filter(|(_, s)| query.get("To").is_none_or(|to| *to == s.to))
        .map(|(n, s)| {
            let created = jiff::Timestamp::from_millisecond(s.at_ms).unwrap();
            serde_json::json!({
                "sid": twilio_sid(n + 1),
                "to": s.to,
                "from": query.get("From").cloned().unwrap_or_default(),
                "body": s.text,
                "status": "sent",
                "direction": "outbound-api",
                "date_created": jiff::fmt::rfc2822::to_string(&created.to_zoned(jiff::tz::TimeZone::UTC)).unwrap(),
            })
        })
        .collect();
    (
        StatusCode::OK,
        Json(serde_json::json!({"messages": messages, "page": 0, "page_size": 50})),
    )
}

/// Starts the fake Graph API and Twilio on a random port; returns its base URL.
pub async fn start_fake_providers() -> (String, FakeProviders) {
    let fake = FakeProviders::default();
    let router = Router::new()
        .route("/{version}/{phone_id}/messages", post(graph_send))
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(twilio_send).get(twilio_list),
        )
        // The same segment names as the send route: the router needs them to match.
        .route("/{version}/{phone_id}", get(graph_media_info))
        .route("/whatsapp-media/{media_id}", get(graph_media_file))
        .route(
            "/2010-04-01/Accounts/{sid}/Messages/{message}/Media/{media_id}",
            get(twilio_media),
        )
        .route("/cdn/{media_id}", get(cdn_file))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, fake)
}

/// The models and the sample knowledge, loaded once for every test.
pub fn shared_assistant() -> Arc<Assistant> {
    static ASSISTANT: OnceLock<Arc<Assistant>> = OnceLock::new();
    ASSISTANT
        .get_or_init(|| {
            let repo = crate::helpers::repo();
            let paths = Paths {
                knowledge: repo.join("knowledge"),
                models: repo.join("models"),
                data: repo.join("target").join("test-data"),
            };
            let embedder = startup::load_embedder(&paths).unwrap();
            Arc::new(
                startup::build_assistant(&paths.knowledge, &paths.cache_dir(), embedder).unwrap(),
            )
        })
        .clone()
}

pub struct TestApp {
    pub base: String,
    pub state: frontdesk::http::AppState,
    pub client: reqwest::Client,
    pub fake: FakeProviders,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// Spawns the real application; `database_url` None means SQLite in a scratch dir.
pub async fn spawn_app(
    name: &str,
    database_url: Option<String>,
    fake: Option<(String, FakeProviders)>,
) -> TestApp {
    spawn_app_with(name, database_url, fake, |_| {}).await
}

/// `spawn_app` with the settings changed by `configure` before the app is built
/// (e.g. `settings.knowledge` pointed at a scratch copy of knowledge/). The
/// shared assistant is still the one built from knowledge/.
pub async fn spawn_app_with(
    name: &str,
    database_url: Option<String>,
    fake: Option<(String, FakeProviders)>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let (fake_base, fake) = match fake {
        Some(fake) => fake,
        None => start_fake_providers().await,
    };
    let data = crate::helpers::scratch(name);
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: data,
        workers: 1,
        ..Settings::default()
    };
    settings.database_url = database_url.map(Secret::new);
    settings.graph_base_url = fake_base.clone();
    settings.whatsapp.app_secret = Some(Secret::new(APP_SECRET));
    settings.whatsapp.verify_token = Some(Secret::new(VERIFY_TOKEN));
    settings.whatsapp.access_token = Some(Secret::new(ACCESS_TOKEN));
    settings.meta.app_secret = Some(Secret::new(APP_SECRET));
    settings.meta.page_access_token = Some(Secret::new(ACCESS_TOKEN));
    settings.twilio.account_sid = Some(TWILIO_SID.into());
    settings.twilio.auth_token = Some(Secret::new(TWILIO_TOKEN));
    settings.twilio.from = Some("+15550001111".into());
    settings.twilio.base_url = Some(fake_base);
    configure(&mut settings);
    let assistant = tokio::task::spawn_blocking(shared_assistant).await.unwrap();
    let application = Application::build(settings, Some(assistant))
        .await
        .expect("the app builds");
    let base = format!("http://{}", application.address());
    let state = application.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        application
            .run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    TestApp {
        base,
        state,
        client: reqwest::Client::new(),
        fake,
        stop: Some(stop),
        done: Some(done),
    }
}

/// A WhatsApp message sent now (the provider's timestamp is the current time).
pub fn whatsapp_payload(from: &str, wamid: &str, text: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    whatsapp_payload_at(from, wamid, text, now)
}

/// A WhatsApp message the provider says was sent at `unix_seconds`.
pub fn whatsapp_payload_at(from: &str, wamid: &str, text: &str, unix_seconds: i64) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": unix_seconds.to_string(), "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
}

pub fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl TestApp {
    pub async fn post_whatsapp(&self, body: &str, signature: Option<String>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/webhooks/whatsapp", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send().await.unwrap()
    }

    /// Posts a Twilio SMS webhook, signed, and expects it acknowledged.
    pub async fn post_sms(&self, from: &str, sid: &str, text: &str) {
        let fields: Vec<(String, String)> = [
            ("MessageSid", sid),
            ("AccountSid", TWILIO_SID),
            ("From", from),
            ("To", "+15550001111"),
            ("Body", text),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(self.post_twilio(&fields).await.status(), 200);
    }

    /// Posts these Twilio webhook fields, signed as Twilio signs them.
    pub async fn post_twilio(&self, fields: &[(String, String)]) -> reqwest::Response {
        let url = format!("{}/webhooks/twilio", self.base);
        let signature = frontdesk::channels::twilio::signature(TWILIO_TOKEN, &url, fields);
        self.client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(serde_urlencoded::to_string(fields).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// The outgoing messages (the bot's and people's replies) in the
    /// conversation with `customer`, oldest first; none before it exists.
    pub async fn outgoing(&self, customer: &str) -> Vec<frontdesk::store::StoredMessage> {
        let Some(conversation) = self.state.store.conversation_of(customer).await.unwrap() else {
            return Vec::new();
        };
        self.state
            .store
            .messages(&conversation)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.direction == "out")
            .collect()
    }
}

/// Polls until `check` holds or the time runs out.
pub async fn eventually(seconds: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// A fresh PostgreSQL database for one test, when DATABASE_URL_TEST points at a server.
pub async fn postgres_database(name: &str) -> Option<String> {
    let admin = std::env::var("DATABASE_URL_TEST").ok()?;
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("DATABASE_URL_TEST is reachable");
    let database = format!("frontdesk_{name}_{}", std::process::id());
    let _ = sqlx::Executor::execute(
        &mut connection,
        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database}")),
    )
    .await;
    sqlx::Executor::execute(
        &mut connection,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")),
    )
    .await
    .expect("can create a test database");
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .unwrap_or(admin);
    Some(format!("{base}/{database}"))
}
