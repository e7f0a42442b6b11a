//! The owner's inbox in a real browser: tests/browser/inbox.mjs drives headless
//! Chromium against the real server while this side plays the customers.
//!
//! The script prints `READY-FOR:<step>` when the page is ready for a customer to
//! do something, and waits for `DONE:<step>` on its stdin. In between, this side
//! sends the signed WhatsApp webhook (or checks what the fake Graph API got), so
//! every customer message arrives while the page is open and must show up live.
//! It needs `/usr/bin/chromium` (or `$CHROMIUM`) and `npm ci` in tests/browser/;
//! `.ci/run` sets both up.

use crate::serve_helpers::*;
use frontdesk::config::{CannedReply, WhatsappTemplate};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PASSWORD: &str = "flour-and-sugar-42";
const KERRY: &str = "15551234567";
const PRIYA: &str = "15557654321";
const MARCUS: &str = "15550001234";
const SAM: &str = "15559990000";
const HOSTILE: &str = "15550006666";
/// What the owner types in the browser; the fake Graph API must receive it.
const REPLY: &str = "Hi Kerry, Jasmine here";
/// Script injection in a customer's name and message: the page must show them as text.
const HOSTILE_NAME: &str = "\"><img src=x onerror=window.__pwned=1>";
const HOSTILE_TEXT: &str =
    "<script>window.__pwned=2</script>\"><img src=x onerror=alert(1)> please let me speak to a person";
const SCREENSHOTS: [&str; 3] = [
    "inbox-needs-you.png",
    "inbox-conversation.png",
    "inbox-phone.png",
];

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A WhatsApp Cloud API message webhook from `from`, whose profile name is `name`.
fn message_from(from: &str, name: &str, wamid: &str, text: &str, unix_seconds: i64) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": unix_seconds.to_string(),
                          "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
}

/// A delivery status webhook for a message we sent.
fn status_of(wamid: &str, status: &str, recipient: &str) -> String {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": wamid, "status": status, "timestamp": now_seconds().to_string(),
                          "recipient_id": recipient}]
        }}]}]
    })
    .to_string()
}

async fn customer_says(app: &TestApp, from: &str, name: &str, text: &str, unix_seconds: i64) {
    let wamid = format!("wamid.in.{from}.{}", frontdesk::store::new_id());
    let body = message_from(from, name, &wamid, text, unix_seconds);
    let response = app.post_whatsapp(&body, Some(sign(&body))).await;
    assert_eq!(response.status(), 200, "the webhook was refused");
}

async fn provider_status(app: &TestApp, wamid: &str, status: &str, recipient: &str) {
    let body = status_of(wamid, status, recipient);
    let response = app.post_whatsapp(&body, Some(sign(&body))).await;
    assert_eq!(response.status(), 200, "the status webhook was refused");
}

/// The fake Graph API's message id for the `index`-th accepted send (it counts from 1).
fn wamid_of_send(index: usize) -> String {
    format!("wamid.out.{}", index + 1)
}

fn sent_to(app: &TestApp, to: &str) -> Vec<String> {
    app.fake
        .sends()
        .into_iter()
        .filter(|sent| sent.provider == "whatsapp" && sent.to == to)
        .map(|sent| sent.text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_answers_a_customer_from_the_inbox_in_a_real_browser() {
    let repo = crate::helpers::repo();
    let browser_dir = repo.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in tests/browser (see tests/browser/README.md)"
    );
    let app = spawn_app_with("inbox-browser", None, None, |settings| {
        settings.inbox.canned = vec![CannedReply {
            title: "Order ready".into(),
            text: "Hi {name}, your order is ready for pickup at {time}.".into(),
        }];
        settings.whatsapp.templates = vec![WhatsappTemplate {
            name: "order_ready".into(),
            language: "en_US".into(),
            parameters: vec!["customer_name".into(), "pickup_time".into()],
        }];
    })
    .await;
    frontdesk::http::auth::set_owner_password(&app.state.store, PASSWORD)
        .await
        .expect("the password is stored");

    // Before the page opens: a question the bot answers, a complaint that needs a
    // person, and a customer whose last message is two days old (window closed).
    customer_says(
        &app,
        PRIYA,
        "Priya",
        "do you deliver to brooklyn?",
        now_seconds(),
    )
    .await;
    customer_says(
        &app,
        MARCUS,
        "Marcus",
        "my cake was smashed when it arrived, I want a refund",
        now_seconds(),
    )
    .await;
    customer_says(
        &app,
        SAM,
        "Sam",
        "do you have gluten free bread?",
        now_seconds() - 2 * 24 * 3600,
    )
    .await;
    assert!(
        eventually(60, || !sent_to(&app, PRIYA).is_empty()
            && !sent_to(&app, MARCUS).is_empty())
        .await,
        "the bot did not answer Priya and Marcus: {:?}",
        app.fake.sends()
    );
    // Sam's answer (if the bot sends one) should not race the page either.
    eventually(20, || !sent_to(&app, SAM).is_empty()).await;

    let screenshots = crate::helpers::scratch("inbox-browser-screenshots");
    let mut child = Command::new("node")
        .arg(browser_dir.join("inbox.mjs"))
        .arg(&app.base)
        .arg(PASSWORD)
        .arg(&screenshots)
        .current_dir(&browser_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (install Node.js, and `npm ci` in tests/browser)");
    let mut to_script = child.stdin.take().unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    let mut log = String::new();
    let mut steps_done = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(_) => {
                let _ = child.kill();
                panic!("the browser test took over 300 s:\n{log}");
            }
        };
        eprintln!("{line}");
        log.push_str(&line);
        log.push('\n');
        let Some(step) = line.strip_prefix("READY-FOR:") else {
            continue;
        };
        match step {
            "kerry-asks-for-a-person" => {
                customer_says(
                    &app,
                    KERRY,
                    "Kerry",
                    "Hi, can I talk to a person about a birthday cake?",
                    now_seconds(),
                )
                .await;
            }
            "reply-delivered-and-read" => {
                let arrived = eventually(20, || sent_to(&app, KERRY).iter().any(|t| t == REPLY));
                assert!(
                    arrived.await,
                    "the owner's reply did not reach the fake WhatsApp (with the bearer token): {:?}",
                    app.fake.sends()
                );
                let index = app
                    .fake
                    .sends()
                    .iter()
                    .position(|sent| sent.to == KERRY && sent.text == REPLY)
                    .unwrap();
                let wamid = wamid_of_send(index);
                provider_status(&app, &wamid, "delivered", KERRY).await;
                provider_status(&app, &wamid, "read", KERRY).await;
            }
            "kerry-asks-the-bot" => {
                let before = sent_to(&app, KERRY).len();
                customer_says(
                    &app,
                    KERRY,
                    "Kerry",
                    "do you deliver to brooklyn?",
                    now_seconds(),
                )
                .await;
                assert!(
                    eventually(30, || sent_to(&app, KERRY).len() > before).await,
                    "the bot did not answer Kerry after the hand-back"
                );
                let answer = sent_to(&app, KERRY).pop().unwrap();
                assert!(answer.to_lowercase().contains("deliver"), "{answer}");
            }
            "hostile-customer" => {
                customer_says(&app, HOSTILE, HOSTILE_NAME, HOSTILE_TEXT, now_seconds()).await;
            }
            other => {
                let _ = child.kill();
                panic!("the script asked for an unknown step {other}:\n{log}");
            }
        }
        writeln!(to_script, "DONE:{step}").expect("the script reads its stdin");
        to_script.flush().unwrap();
        steps_done.push(step.to_string());
    }
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap();
    assert!(
        status.success(),
        "the browser test failed:\n{log}\n{errors}"
    );
    assert!(log.contains("browser test passed"), "{log}\n{errors}");
    assert_eq!(
        steps_done,
        [
            "kerry-asks-for-a-person",
            "reply-delivered-and-read",
            "kerry-asks-the-bot",
            "hostile-customer"
        ]
    );

    // Kerry got the hand-over, the owner's reply, a colleague's reply and the
    // bot's answer after the hand-back: nothing twice, nothing more.
    let kerry = sent_to(&app, KERRY);
    assert_eq!(
        kerry.iter().filter(|text| text.as_str() == REPLY).count(),
        1,
        "{kerry:?}"
    );
    assert_eq!(kerry.len(), 4, "{kerry:?}");

    // The template picked for Sam (whose window had closed) went out as a template.
    assert!(
        eventually(20, || sent_to(&app, SAM)
            .iter()
            .any(|text| text == "template:order_ready"))
        .await,
        "Sam's template did not reach the fake WhatsApp: {:?}",
        sent_to(&app, SAM)
    );

    let published = repo.join("docs/screenshots");
    std::fs::create_dir_all(&published).unwrap();
    for name in SCREENSHOTS {
        let shot = screenshots.join(name);
        let bytes =
            std::fs::read(&shot).unwrap_or_else(|_| panic!("{} was not written", shot.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{name} is not a PNG");
        std::fs::write(published.join(name), bytes).unwrap();
    }
    app.stop().await;
}
