//! The owner's API against the real server on both stores: the auth matrix
//! walked from the OpenAPI document, CSRF, tokens, the reply → outbox → fake
//! provider loop, hand-back, WhatsApp's 24-hour window, the event stream and
//! its resume, and two replicas streaming the same events from one PostgreSQL.

use crate::serve_helpers::*;
use std::time::Duration;

pub const PASSWORD: &str = "flour-on-my-hands";

/// A client that does not follow redirects (the tests read them).
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in browser: its cookie and CSRF token.
pub struct Owner {
    pub cookie: String,
    pub csrf: String,
}

pub async fn sign_in(app: &TestApp, password: &str) -> Option<Owner> {
    let response = plain_client()
        .post(format!("{}/login", app.base))
        .form(&[("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get("set-cookie")?
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let session: serde_json::Value = app
        .client
        .get(format!("{}/api/session", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Some(Owner {
        cookie,
        csrf: session["csrf"].as_str().unwrap().to_string(),
    })
}

impl Owner {
    pub async fn get(&self, app: &TestApp, path: &str) -> serde_json::Value {
        let response = app
            .client
            .get(format!("{}{path}", app.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn post(
        &self,
        app: &TestApp,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        app.client
            .post(format!("{}{path}", app.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

async fn signed_in_app(name: &str, database: Option<String>) -> (TestApp, Owner) {
    let app = spawn_app(name, database, None).await;
    frontdesk::http::auth::set_owner_password(&app.state.store, PASSWORD)
        .await
        .unwrap();
    let owner = sign_in(&app, PASSWORD).await.expect("signed in");
    (app, owner)
}

async fn post_signed(app: &TestApp, body: &str) {
    assert_eq!(
        app.post_whatsapp(body, Some(sign(body))).await.status(),
        200
    );
}

/// Waits until `view` lists a conversation for `address`; returns its id.
async fn conversation_in(app: &TestApp, owner: &Owner, view: &str, address: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = owner
            .get(app, &format!("/api/conversations?view={view}"))
            .await;
        if let Some(found) = list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["contact"]["address"] == address)
        {
            return found["id"].as_str().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{address} never appeared in {view}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_owner_answers_in_the_inbox_and_hands_back(app: TestApp, owner: Owner) {
    let customer = "15557654321";
    post_signed(
        &app,
        &whatsapp_payload(
            customer,
            "wamid.person.1",
            "can I talk to a real person please",
        ),
    )
    .await;
    let id = conversation_in(&app, &owner, "needs_you", customer).await;
    let list = owner.get(&app, "/api/conversations?view=needs_you").await;
    let item = &list["conversations"][0];
    assert_eq!(item["channel"], "whatsapp");
    assert_eq!(item["contact"]["name"], "Kerry");
    assert_eq!(item["owner"], "human");
    assert_eq!(item["queue_item"]["reason"], "human_requested");
    assert!(item["waiting_since_ms"].as_i64().unwrap() > 0);
    assert!(
        eventually(30, || app.fake.sends().len() == 1).await,
        "the hand-over message was not sent"
    );

    let response = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/reply"),
            serde_json::json!({"text": "Hi Kerry, Jasmine here. How can I help?"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let message_id = response.json::<serde_json::Value>().await.unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        eventually(30, || app.fake.sends().len() == 2).await,
        "the owner's reply did not reach the provider"
    );
    let sent = &app.fake.sends()[1];
    assert_eq!(
        (sent.provider, sent.to.as_str()),
        ("whatsapp", customer),
        "the reply went to the wrong place"
    );
    assert_eq!(sent.text, "Hi Kerry, Jasmine here. How can I help?");
    assert_eq!(
        *app.fake.refused.lock().unwrap(),
        0,
        "bearer token or shape refused"
    );

    let detail = owner.get(&app, &format!("/api/conversations/{id}")).await;
    let messages = detail["messages"].as_array().unwrap();
    let mine = messages
        .iter()
        .find(|m| m["id"] == message_id.as_str())
        .unwrap();
    assert_eq!(mine["author"], "human");
    assert!(
        ["queued", "sent"].contains(&mine["status"].as_str().unwrap()),
        "{mine}"
    );
    let escalation = messages.iter().find(|m| m["author"] == "bot").unwrap();
    assert_eq!(escalation["action"], "escalate");
    assert_eq!(escalation["reason"], "human_requested");
    assert!(detail["window"]["open"].as_bool().unwrap());

    // A note is kept, never sent.
    let note = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/notes"),
            serde_json::json!({"text": "regular, likes lemon"}),
        )
        .await;
    assert_eq!(note.status(), 201);
    let detail = owner.get(&app, &format!("/api/conversations/{id}")).await;
    assert_eq!(detail["notes"][0]["text"], "regular, likes lemon");

    // Hand back: the queue empties and the bot answers the next message.
    let back = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/hand-back"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(back.status(), 204);
    let needs = owner.get(&app, "/api/conversations?view=needs_you").await;
    assert!(
        needs["conversations"].as_array().unwrap().is_empty(),
        "{needs}"
    );
    post_signed(
        &app,
        &whatsapp_payload(customer, "wamid.person.2", "do u deliver to brooklyn?"),
    )
    .await;
    assert!(
        eventually(30, || app.fake.sends().len() == 3).await,
        "the bot did not answer after the hand-back"
    );
    assert!(app.fake.sends()[2].text.to_lowercase().contains("deliver"));

    // Search finds the conversation by any message's text.
    let found = owner
        .get(&app, "/api/conversations?view=all&q=BROOKLYN")
        .await;
    assert_eq!(found["conversations"][0]["id"], id.as_str());
    let none = owner
        .get(&app, "/api/conversations?view=all&q=zebra%25")
        .await;
    assert!(none["conversations"].as_array().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_answers_in_the_inbox_and_hands_back_on_sqlite() {
    let (app, owner) = signed_in_app("inbox-reply-sqlite", None).await;
    the_owner_answers_in_the_inbox_and_hands_back(app, owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_answers_in_the_inbox_and_hands_back_on_postgres() {
    let Some(url) = postgres_database("inbox_reply").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let (app, owner) = signed_in_app("inbox-reply-postgres", Some(url)).await;
    the_owner_answers_in_the_inbox_and_hands_back(app, owner).await;
}

async fn a_closed_whatsapp_window_refuses_a_free_form_reply(app: TestApp, owner: Owner) {
    let customer = "15550002525";
    let a_day_and_an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 25 * 3600;
    post_signed(
        &app,
        &whatsapp_payload_at(
            customer,
            "wamid.late.1",
            "I want to speak to a manager",
            a_day_and_an_hour_ago,
        ),
    )
    .await;
    let id = conversation_in(&app, &owner, "needs_you", customer).await;
    assert!(eventually(30, || app.fake.sends().len() == 1).await);
    let detail = owner.get(&app, &format!("/api/conversations/{id}")).await;
    assert_eq!(detail["window"]["open"], false, "{}", detail["window"]);
    let response = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/reply"),
            serde_json::json!({"text": "so sorry, calling you now"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "whatsapp_window_closed");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.fake.sends().len(), 1, "a closed-window reply was sent");
    let (_, outbox, _) = app.state.store.depths().await.unwrap();
    assert_eq!(outbox, 0, "a closed-window reply was queued");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_whatsapp_window_refuses_a_free_form_reply_on_sqlite() {
    let (app, owner) = signed_in_app("inbox-window-sqlite", None).await;
    a_closed_whatsapp_window_refuses_a_free_form_reply(app, owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_whatsapp_window_refuses_a_free_form_reply_on_postgres() {
    let Some(url) = postgres_database("inbox_window").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let (app, owner) = signed_in_app("inbox-window-postgres", Some(url)).await;
    a_closed_whatsapp_window_refuses_a_free_form_reply(app, owner).await;
}

/// Every operation of the OpenAPI document, with `{id}` filled in.
async fn documented_operations(app: &TestApp) -> Vec<(String, String)> {
    let response = app
        .client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the OpenAPI document is public");
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push((method.to_uppercase(), path.replace("{id}", "0000")));
        }
    }
    assert!(operations.len() >= 14, "{operations:?}");
    operations
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::StatusCode {
    let mut request =
        plain_client().request(method.parse().unwrap(), format!("{}{path}", app.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if method == "POST" {
        request = request
            .header("content-type", "application/json")
            .body("{\"text\": \"hi\", \"message\": \"hi\", \"name\": \"x\"}");
    }
    request
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_api_path_needs_credentials_on_sqlite() {
    let (app, owner) = signed_in_app("inbox-auth", None).await;
    every_documented_api_path_needs_credentials(app, owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_api_path_needs_credentials_on_postgres() {
    let Some(url) = postgres_database("inbox_auth").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let (app, owner) = signed_in_app("inbox-auth-postgres", Some(url)).await;
    every_documented_api_path_needs_credentials(app, owner).await;
}

async fn every_documented_api_path_needs_credentials(app: TestApp, owner: Owner) {
    let operations = documented_operations(&app).await;
    let token = frontdesk::http::auth::create_api_token(&app.state.store, "ci")
        .await
        .unwrap();
    let bearer = format!("Bearer {token}");
    for (method, path) in &operations {
        if path == "/api/openapi.json" {
            continue;
        }
        assert_eq!(
            send(&app, method, path, &[]).await,
            401,
            "{method} {path} without credentials"
        );
        assert_eq!(
            send(
                &app,
                method,
                path,
                &[("authorization", "Bearer fd_not-a-token")]
            )
            .await,
            401,
            "{method} {path} with a wrong token"
        );
        if method == "POST" {
            assert_eq!(
                send(&app, method, path, &[("cookie", &owner.cookie)]).await,
                403,
                "{method} {path} with the cookie but no CSRF token"
            );
        }
        if path == "/api/events" {
            continue; // a stream: checked below
        }
        let with_token = send(&app, method, path, &[("authorization", &bearer)]).await;
        assert!(
            with_token != 401 && with_token != 403,
            "{method} {path} refused a live token: {with_token}"
        );
    }
    // The inbox pages send a signed-out browser to the sign-in page.
    for page in ["/", "/knowledge", "/conversations/0000"] {
        let response = plain_client()
            .get(format!("{}{page}", app.base))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{page}");
        assert_eq!(response.headers()["location"], "/login");
    }
    let page = plain_client()
        .get(format!("{}/", app.base))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'") && !policy.contains("unsafe-inline"));

    // A revoked token is refused at once.
    assert!(app.state.store.revoke_api_token("ci").await.unwrap());
    assert_eq!(
        send(
            &app,
            "GET",
            "/api/conversations",
            &[("authorization", &bearer)]
        )
        .await,
        401
    );
    // A wrong password does not sign in; signing out ends the session.
    assert!(sign_in(&app, "not the password").await.is_none());
    let signed_out = plain_client()
        .post(format!("{}/logout", app.base))
        .header("cookie", &owner.cookie)
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 303);
    assert_eq!(
        send(&app, "GET", "/api/session", &[("cookie", &owner.cookie)]).await,
        401
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_limited() {
    let (app, _owner) = signed_in_app("inbox-rate", None).await;
    let mut limited = false;
    for _ in 0..8 {
        let response = plain_client()
            .post(format!("{}/login", app.base))
            .form(&[("password", "guess")])
            .send()
            .await
            .unwrap();
        if response.headers()["location"] == "/login?error=rate" {
            limited = true;
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert!(limited, "eight wrong passwords in a row were all tried");
    app.stop().await;
}

/// Reads server-sent events until `count` have arrived (or the time is up).
async fn read_events(
    mut response: reqwest::Response,
    count: usize,
) -> Vec<(i64, String, serde_json::Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), serde_json::Value::Null);
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = value.trim().parse().ok();
                } else if let Some(value) = line.strip_prefix("event:") {
                    kind = value.trim().to_string();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = serde_json::from_str(value.trim()).unwrap();
                }
            }
            if let Some(id) = id {
                events.push((id, kind, data));
            }
        }
    }
    events
}

async fn open_stream(
    app: &TestApp,
    owner: &Owner,
    last_event_id: Option<i64>,
) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}/api/events", app.base))
        .header("cookie", &owner.cookie);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_after_last_event_id_on_sqlite() {
    let (app, owner) = signed_in_app("inbox-events", None).await;
    the_event_stream_resumes_after_last_event_id(app, owner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_resumes_after_last_event_id_on_postgres() {
    let Some(url) = postgres_database("inbox_events").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let (app, owner) = signed_in_app("inbox-events-postgres", Some(url)).await;
    the_event_stream_resumes_after_last_event_id(app, owner).await;
}

async fn the_event_stream_resumes_after_last_event_id(app: TestApp, owner: Owner) {
    let stream = open_stream(&app, &owner, None).await;
    post_signed(
        &app,
        &whatsapp_payload("15550003131", "wamid.ev.1", "are you open sunday?"),
    )
    .await;
    // Stored, answered, sent: at least three events for the conversation.
    let first = read_events(stream, 3).await;
    assert!(first.len() >= 3, "{first:?}");
    assert_eq!(first[0].1, "message");
    let conversation = first[0].2["conversation_id"].as_str().unwrap().to_string();
    assert!(first.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");

    // Reconnecting after the first event replays the rest, in order, once.
    let resumed = read_events(open_stream(&app, &owner, Some(first[0].0)).await, 2).await;
    assert_eq!(resumed[0].0, first[1].0);
    assert_eq!(resumed[1].0, first[2].0);
    assert_eq!(resumed[0].2["conversation_id"], conversation.as_str());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_stream_the_same_events() {
    let Some(url) = postgres_database("inbox_two").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let fake = start_fake_providers().await;
    let first = spawn_app("inbox-pg-a", Some(url.clone()), Some(fake.clone())).await;
    let second = spawn_app("inbox-pg-b", Some(url), Some(fake)).await;
    frontdesk::http::auth::set_owner_password(&first.state.store, PASSWORD)
        .await
        .unwrap();
    let on_first = sign_in(&first, PASSWORD).await.unwrap();
    let on_second = sign_in(&second, PASSWORD).await.unwrap();
    let stream_first = open_stream(&first, &on_first, None).await;
    let stream_second = open_stream(&second, &on_second, None).await;
    // The message arrives at the first replica only.
    post_signed(
        &first,
        &whatsapp_payload("15550004141", "wamid.two.ev", "can I talk to a person"),
    )
    .await;
    let (seen_first, seen_second) =
        tokio::join!(read_events(stream_first, 3), read_events(stream_second, 3));
    assert!(seen_first.len() >= 3, "{seen_first:?}");
    assert_eq!(
        seen_first.iter().map(|e| e.0).collect::<Vec<_>>(),
        seen_second.iter().map(|e| e.0).collect::<Vec<_>>(),
        "the replicas streamed different events"
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_knowledge_status_and_ask_are_served() {
    let (app, owner) = signed_in_app("inbox-knowledge", None).await;
    let status = owner.get(&app, "/api/knowledge").await;
    assert!(status["entries"].as_u64().unwrap() > 50, "{status}");
    assert!(status["loaded_ms"].as_i64().unwrap() > 0);
    assert!(status["errors"].as_array().unwrap().is_empty());
    let answer = owner
        .post(
            &app,
            "/api/ask",
            serde_json::json!({"message": "do u deliver to brooklyn?", "channel": "sms"}),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["action"], "answer");
    assert!(answer["reply"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("deliver"));
    // Nothing was stored.
    assert_eq!(app.state.store.count_messages("in").await.unwrap(), 0);
    app.stop().await;
}

/// Runs the real binary against the app's own data dir (its SQLite file).
fn frontdesk_in(app: &TestApp, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .args(args)
        .env("FRONTDESK_DATA_DIR", &app.state.settings.data_dir)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_password_and_tokens_from_the_command_line() {
    let app = spawn_app("inbox-cli", None, None).await;
    let set = frontdesk_in(&app, &["set-password"], "a-new-long-password\n");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    assert!(sign_in(&app, "a-new-long-password").await.is_some());
    let short = frontdesk_in(&app, &["set-password"], "short\n");
    assert!(!short.status.success());

    let created = frontdesk_in(&app, &["token", "create", "--name", "zapier"], "");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_string();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        send(
            &app,
            "GET",
            "/api/conversations",
            &[("authorization", &bearer)]
        )
        .await,
        200
    );
    let revoked = frontdesk_in(&app, &["token", "revoke", "zapier"], "");
    assert!(revoked.status.success());
    assert_eq!(
        send(
            &app,
            "GET",
            "/api/conversations",
            &[("authorization", &bearer)]
        )
        .await,
        401
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_run_setup_link_sets_the_password_once() {
    let app = spawn_app("inbox-setup", None, None).await;
    let link = frontdesk::http::auth::setup_link(&app.state.store, &app.base)
        .await
        .unwrap()
        .expect("no password yet: a setup link");
    let token = link.split("token=").nth(1).unwrap().to_string();
    // Without a password nobody gets in, whatever they type.
    assert!(sign_in(&app, "").await.is_none());
    let setup = |token: String, password: &'static str| {
        let base = app.base.clone();
        async move {
            plain_client()
                .post(format!("{base}/setup"))
                .form(&[("token", token.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = setup("0".repeat(64), "long-enough-password").await;
    assert_eq!(wrong.headers()["location"], "/login?error=setup");
    let done = setup(token.clone(), "long-enough-password").await;
    assert_eq!(done.headers()["location"], "/");
    assert!(
        done.headers().contains_key("set-cookie"),
        "set up and signed in"
    );
    // The link is spent, and no new one is made once a password exists.
    let again = setup(token, "another-password-1").await;
    assert_eq!(again.headers()["location"], "/login?error=setup");
    assert!(
        frontdesk::http::auth::setup_link(&app.state.store, &app.base)
            .await
            .unwrap()
            .is_none()
    );
    assert!(sign_in(&app, "long-enough-password").await.is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused() {
    let app = spawn_app("inbox-expiry", None, None).await;
    let id = "a".repeat(64);
    app.state
        .store
        .create_session(
            &frontdesk::http::auth::secret_hash(&id),
            "owner",
            "csrf",
            frontdesk::store::now_ms() - 1,
        )
        .await
        .unwrap();
    let cookie = format!("frontdesk_session={id}");
    assert_eq!(
        send(&app, "GET", "/api/session", &[("cookie", &cookie)]).await,
        401
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_window_a_template_goes_out_and_a_refusal_is_failed_in_plain_words() {
    let fake = start_fake_providers().await;
    let app = spawn_app_with("inbox-template", None, Some(fake), |settings| {
        settings.whatsapp.templates = vec![frontdesk::config::WhatsappTemplate {
            name: "order_update".into(),
            language: "en_US".into(),
            parameters: vec!["customer name".into()],
        }];
    })
    .await;
    frontdesk::http::auth::set_owner_password(&app.state.store, PASSWORD)
        .await
        .unwrap();
    let owner = sign_in(&app, PASSWORD).await.unwrap();
    let two_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 48 * 3600;
    post_signed(
        &app,
        &whatsapp_payload_at(
            "15550009090",
            "wamid.old.1",
            "please call me back",
            two_days_ago,
        ),
    )
    .await;
    let id = conversation_in(&app, &owner, "needs_you", "15550009090").await;
    let detail = owner.get(&app, &format!("/api/conversations/{id}")).await;
    assert_eq!(detail["templates"][0]["name"], "order_update");
    let wrong = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/template"),
            serde_json::json!({"name": "order_update", "parameters": []}),
        )
        .await;
    assert_eq!(wrong.status(), 400, "a missing parameter is refused");
    let sent = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/template"),
            serde_json::json!({"name": "order_update", "parameters": ["Kerry"]}),
        )
        .await;
    assert_eq!(sent.status(), 202);
    assert!(
        eventually(30, || {
            app.fake
                .sends()
                .iter()
                .any(|s| s.to == "15550009090" && s.text == "template:order_update")
        })
        .await,
        "the template did not reach the provider: {:?}",
        app.fake.sends()
    );

    // The window looks open to us but WhatsApp says otherwise: failed, in plain
    // words, and not retried.
    post_signed(
        &app,
        &whatsapp_payload(
            REFUSING_CUSTOMER,
            "wamid.refuse.1",
            "can I talk to a person",
        ),
    )
    .await;
    let id = conversation_in(&app, &owner, "needs_you", REFUSING_CUSTOMER).await;
    let reply = owner
        .post(
            &app,
            &format!("/api/conversations/{id}/reply"),
            serde_json::json!({"text": "Hello! Jasmine here."}),
        )
        .await;
    assert_eq!(reply.status(), 202);
    let message_id = reply.json::<serde_json::Value>().await.unwrap()["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut failed = serde_json::Value::Null;
    for _ in 0..300 {
        let detail = owner.get(&app, &format!("/api/conversations/{id}")).await;
        failed = detail["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == message_id.as_str())
            .cloned()
            .unwrap();
        if failed["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("24 hours"),
        "{failed}"
    );
    let refusals = *app.fake.refused.lock().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        *app.fake.refused.lock().unwrap(),
        refusals,
        "a window refusal was retried"
    );
    app.stop().await;
}
