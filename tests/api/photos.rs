//! Photos through `serve`: a WhatsApp image mid custom-cake form is fetched
//! with the bearer token, stored, becomes the queue item's `photo` field and
//! is served to the signed-in owner only; refused photos (not a picture, over
//! the cap) leave nothing on disk and say why in the conversation API; Twilio
//! MMS with basic auth; Mailgun multipart email; web chat uploads. SQLite and
//! PostgreSQL for the store part.

use crate::inbox_api::{sign_in, Owner, PASSWORD};
use crate::serve_helpers::*;
use std::time::Duration;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-a-unicorn-cake";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0-a-rainbow-cake";
const CUSTOMER: &str = "15550004321";

async fn signed_in(app: &TestApp) -> Owner {
    frontdesk::http::auth::set_owner_password(&app.state.store, PASSWORD)
        .await
        .unwrap();
    sign_in(app, PASSWORD).await.expect("signed in")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A WhatsApp image message, as the Cloud API posts it.
fn whatsapp_image(wamid: &str, media_id: &str, mime_type: &str, caption: Option<&str>) -> String {
    let mut image = serde_json::json!({"mime_type": mime_type, "sha256": "x", "id": media_id});
    if let Some(caption) = caption {
        image["caption"] = caption.into();
    }
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": CUSTOMER}],
            "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": now_secs().to_string(), "type": "image", "image": image}]
        }}]}]
    })
    .to_string()
}

/// Posts a signed body and waits for the bot's `sends_after`-th send; returns its text.
async fn post_and_wait(app: &TestApp, body: &str, sends_after: usize) -> String {
    assert_eq!(
        app.post_whatsapp(body, Some(sign(body))).await.status(),
        200
    );
    assert!(
        eventually(60, || app.fake.sends().len() >= sends_after).await,
        "no reply; sent so far: {:?}",
        app.fake.sends()
    );
    app.fake.sends()[sends_after - 1].text.clone()
}

async fn say(app: &TestApp, wamid: &str, text: &str, sends_after: usize) -> String {
    post_and_wait(app, &whatsapp_payload(CUSTOMER, wamid, text), sends_after).await
}

/// A date the bakery takes, three weeks out, as a customer writes it.
fn open_date_three_weeks_out() -> String {
    let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let mut date = jiff::Timestamp::now().to_zoned(zone).date();
    date = date.checked_add(jiff::Span::new().days(21)).unwrap();
    while date.weekday() == jiff::civil::Weekday::Monday
        || (date.month() == 12 && (date.day() == 25 || date.day() == 26))
        || (date.month() == 1 && date.day() == 1)
    {
        date = date.tomorrow().unwrap();
    }
    date.strftime("%B %-d").to_string()
}

/// Starts the custom cake form and answers up to the design + photo question.
async fn reach_the_design_question(app: &TestApp) {
    let asked = say(
        app,
        "wamid.photo.1",
        "I'd like to order a custom cake for 20 people",
        1,
    )
    .await;
    assert!(asked.contains("What date"), "{asked}");
    let date = open_date_three_weeks_out();
    let asked = say(
        app,
        "wamid.photo.2",
        &format!("{date}, chocolate please"),
        2,
    )
    .await;
    assert!(
        asked.contains("design") && asked.contains("photo"),
        "{asked}"
    );
}

/// The only conversation on `channel`, as the owner's API shows it.
async fn conversation_on(app: &TestApp, owner: &Owner, channel: &str) -> serde_json::Value {
    let list = owner.get(app, "/api/conversations?view=all").await;
    let id = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} conversation: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    owner.get(app, &format!("/api/conversations/{id}")).await
}

/// Every attachment in a conversation's messages, oldest first.
fn attachments(conversation: &serde_json::Value) -> Vec<serde_json::Value> {
    conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Polls the conversation until it has `count` settled attachments.
async fn settled_attachments(
    app: &TestApp,
    owner: &Owner,
    channel: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = attachments(&conversation_on(app, owner, channel).await);
        if found.len() >= count && found.iter().all(|a| a["status"] != "pending") {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "attachments never settled: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_attachment(app: &TestApp, id: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/api/attachments/{id}", app.base));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// The photo's bytes come back to the owner with its checked type, and to no one else.
async fn assert_served(app: &TestApp, owner: &Owner, id: &str, bytes: &[u8], content_type: &str) {
    let served = get_attachment(app, id, Some(&owner.cookie)).await;
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], content_type);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    assert_eq!(headers["content-disposition"], "inline");
    assert_eq!(served.bytes().await.unwrap().as_ref(), bytes);
    assert_eq!(get_attachment(app, id, None).await.status(), 401);
    let wrong = app
        .client
        .get(format!("{}/api/attachments/{id}", app.base))
        .header("authorization", "Bearer fd_not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}

async fn a_whatsapp_photo_mid_form_becomes_the_photo_field(name: &str, url: Option<String>) {
    let app = spawn_app(name, url, None).await;
    let owner = signed_in(&app).await;
    app.fake.add_media("1479537139650973", "image/png", PNG);
    reach_the_design_question(&app).await;
    let body = whatsapp_image(
        "wamid.photo.3",
        "1479537139650973",
        "image/png",
        Some("a unicorn like this"),
    );
    let asked = post_and_wait(&app, &body, 3).await;
    assert!(asked.contains("What name"), "{asked}");
    let confirmation = say(&app, "wamid.photo.4", "Sam Lee", 4).await;
    assert!(
        confirmation.contains("Photo: photo received"),
        "{confirmation}"
    );
    say(&app, "wamid.photo.5", "yes", 5).await;

    let stored = settled_attachments(&app, &owner, "whatsapp", 1).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["status"], "stored", "{stored:?}");
    assert_eq!(stored[0]["content_type"], "image/png");
    assert_eq!(stored[0]["size"], PNG.len());
    let id = stored[0]["id"].as_str().unwrap().to_string();

    let needs_you = owner.get(&app, "/api/conversations?view=needs_you").await;
    let fields = &needs_you["conversations"][0]["queue_item"]["fields"];
    assert_eq!(fields["photo"], id.as_str(), "{needs_you}");
    assert_eq!(fields["design"], "a unicorn like this", "{needs_you}");
    let conversation = conversation_on(&app, &owner, "whatsapp").await;
    let photo_message = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| !m["attachments"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(
        photo_message["text"],
        format!("[attachment:{id}] a unicorn like this")
    );

    assert_served(&app, &owner, &id, PNG, "image/png").await;
    let file = frontdesk::attachments::path_of(&app.state.settings.data_dir, &id);
    assert_eq!(std::fs::read(file).unwrap(), PNG);
    assert_eq!(
        *app.fake.media_refused.lock().unwrap(),
        0,
        "fetched with the bearer token"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_photo_mid_form_becomes_the_photo_field_on_sqlite() {
    a_whatsapp_photo_mid_form_becomes_the_photo_field("photos-whatsapp", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_photo_mid_form_becomes_the_photo_field_on_postgres() {
    let Some(url) = postgres_database("photos_whatsapp").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    a_whatsapp_photo_mid_form_becomes_the_photo_field("photos-whatsapp-pg", Some(url)).await;
}

async fn refused_photos_say_why_and_leave_nothing_stored(name: &str, url: Option<String>) {
    let app = spawn_app_with(name, url, None, |settings| {
        settings.attachments.max_bytes = 4096;
    })
    .await;
    let owner = signed_in(&app).await;
    app.fake
        .add_media("MEDIA-PDF", "image/jpeg", b"%PDF-1.7 an invoice");
    let mut big = PNG.to_vec();
    big.resize(8192, 0);
    app.fake.add_media("MEDIA-BIG", "image/png", &big);
    reach_the_design_question(&app).await;

    let body = whatsapp_image("wamid.photo.3", "MEDIA-PDF", "image/jpeg", None);
    let asked = post_and_wait(&app, &body, 3).await;
    assert!(
        asked.contains("didn't come through") && asked.contains("not a picture"),
        "the customer is asked again: {asked}"
    );
    let body = whatsapp_image("wamid.photo.4", "MEDIA-BIG", "image/png", None);
    let asked = post_and_wait(&app, &body, 4).await;
    assert!(
        asked.contains("didn't come through") && asked.contains("larger than the 4096 bytes limit"),
        "{asked}"
    );

    let refused = settled_attachments(&app, &owner, "whatsapp", 2).await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    for attachment in &refused {
        assert_eq!(attachment["status"], "failed", "{attachment}");
        assert!(attachment["size"].is_null(), "{attachment}");
        let id = attachment["id"].as_str().unwrap();
        assert_eq!(
            get_attachment(&app, id, Some(&owner.cookie)).await.status(),
            404
        );
    }
    assert!(refused[0]["error"]
        .as_str()
        .unwrap()
        .contains("not a picture"));
    assert!(refused[1]["error"]
        .as_str()
        .unwrap()
        .contains("larger than"));
    let folder = app.state.settings.data_dir.join("attachments");
    let files = std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "nothing is kept of a refused photo");
    // An unknown id is a 404 too, never a path.
    assert_eq!(
        get_attachment(&app, "0000", Some(&owner.cookie))
            .await
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_photos_say_why_and_leave_nothing_stored_on_sqlite() {
    refused_photos_say_why_and_leave_nothing_stored("photos-refused", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_photos_say_why_and_leave_nothing_stored_on_postgres() {
    let Some(url) = postgres_database("photos_refused").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    refused_photos_say_why_and_leave_nothing_stored("photos-refused-pg", Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_mms_is_fetched_with_basic_auth() {
    let app = spawn_app("photos-twilio", None, None).await;
    let owner = signed_in(&app).await;
    app.fake.add_media("ME0cake", "image/jpeg", JPEG);
    let fake_base = app.state.settings.twilio.base_url.clone().unwrap();
    let media_url = |account: &str| {
        format!("{fake_base}/2010-04-01/Accounts/{account}/Messages/MM1/Media/ME0cake")
    };
    let fields: Vec<(String, String)> = [
        (
            "MessageSid",
            "MM1234567890abcdef1234567890abcdef".to_string(),
        ),
        ("AccountSid", TWILIO_SID.to_string()),
        ("From", "+15557770000".to_string()),
        ("To", "+15550001111".to_string()),
        ("Body", "this is the cake I'd like".to_string()),
        ("NumMedia", "2".to_string()),
        ("MediaContentType0", "image/jpeg".to_string()),
        ("MediaUrl0", media_url(TWILIO_SID)),
        // Another account's media: the fake refuses our credentials for it.
        ("MediaContentType1", "image/jpeg".to_string()),
        ("MediaUrl1", media_url("ACsomeoneelse")),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    assert_eq!(app.post_twilio(&fields).await.status(), 200);
    let found = settled_attachments(&app, &owner, "sms", 2).await;
    assert_eq!(found[0]["status"], "stored", "{found:?}");
    assert_eq!(found[1]["status"], "failed", "{found:?}");
    assert!(
        found[1]["error"].as_str().unwrap().contains("HTTP 401"),
        "{found:?}"
    );
    let id = found[0]["id"].as_str().unwrap();
    assert_served(&app, &owner, id, JPEG, "image/jpeg").await;
    app.stop().await;
}

/// A multipart/form-data body by hand: text fields, then file parts.
fn multipart(fields: &[(&str, String)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "frontdesk-test-boundary-7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (name, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_email_keeps_its_photo_and_checks_the_signature() {
    const KEY: &str = "mailgun-signing-key";
    let app = spawn_app_with("photos-email", None, None, |settings| {
        settings.email.signing_key = Some(frontdesk::config::Secret::new(KEY));
    })
    .await;
    let owner = signed_in(&app).await;
    let timestamp = now_secs().to_string();
    let token = "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f";
    let signature = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let gif: &[u8] = b"GIF89a\x01\0\x01\0-a-dinosaur-cake";
    let post = |signature: String| {
        let fields = [
            ("timestamp", timestamp.clone()),
            ("token", token.to_string()),
            ("signature", signature),
            ("from", "Ann Lee <ann@example.com>".to_string()),
            ("recipient", "hello@bakery.example".to_string()),
            ("subject", "Cake idea".to_string()),
            ("stripped-text", "Something like this, please".to_string()),
            ("attachment-count", "2".to_string()),
            ("Message-Id", "<photo-email-1@example.com>".to_string()),
        ];
        let (content_type, body) = multipart(
            &fields,
            &[
                ("attachment-1", "image/gif", gif),
                ("attachment-2", "application/pdf", b"%PDF-1.7"),
            ],
        );
        app.client
            .post(format!("{}/webhooks/email", app.base))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(post("00".repeat(32)).await.unwrap().status(), 401);
    assert_eq!(post(signature).await.unwrap().status(), 200);
    let found = settled_attachments(&app, &owner, "email", 1).await;
    assert_eq!(
        found.len(),
        1,
        "only the picture is an attachment: {found:?}"
    );
    assert_eq!(found[0]["status"], "stored");
    let id = found[0]["id"].as_str().unwrap();
    let conversation = conversation_on(&app, &owner, "email").await;
    let text = conversation["messages"][0]["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!("Something like this, please [attachment:{id}] [attachment]")
    );
    assert_served(&app, &owner, id, gif, "image/gif").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_chat_upload_is_checked_stored_and_answered() {
    let app = spawn_app("photos-webchat", None, None).await;
    let owner = signed_in(&app).await;
    let webp: &[u8] = b"RIFF\x24\0\0\0WEBPVP8 -a-lemon-cake";
    let visitor = "3f2a1b0c9d8e7f5f1b4c9a0e2d8f7a6b";
    let upload = |visitor: &str, client_id: &str, content_type: &str, bytes: &[u8]| {
        let (content_type, body) = multipart(
            &[
                ("visitor", visitor.to_string()),
                ("client_id", client_id.to_string()),
            ],
            &[("photo", content_type, bytes)],
        );
        app.client
            .post(format!("{}/chat/upload", app.base))
            .header("content-type", content_type)
            .header("origin", "https://shop.example")
            .body(body)
            .send()
    };
    let refused = upload("short", "p-1", "image/webp", webp).await.unwrap();
    assert_eq!(
        refused.status(),
        401,
        "the visitor token is checked like a hello"
    );
    let refused = upload(visitor, "p-1", "image/png", b"hello").await.unwrap();
    assert_eq!(refused.status(), 415);
    let why: serde_json::Value = refused.json().await.unwrap();
    assert!(
        why["message"].as_str().unwrap().contains("not a picture"),
        "{why}"
    );

    let accepted = upload(visitor, "p-2", "image/webp", webp).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(
        accepted.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let answer: serde_json::Value = accepted.json().await.unwrap();
    let id = answer["attachment_id"].as_str().unwrap().to_string();
    assert_eq!(answer["text"], format!("[attachment:{id}]"));
    // A resend of the same upload is the same message.
    let again: serde_json::Value = upload(visitor, "p-2", "image/webp", webp)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], answer["id"]);

    let found = settled_attachments(&app, &owner, "webchat", 1).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], id.as_str());
    assert_served(&app, &owner, &id, webp, "image/webp").await;
    // The bot answers it like any other message.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let conversation = conversation_on(&app, &owner, "webchat").await;
        let messages = conversation["messages"].as_array().unwrap().clone();
        if messages.iter().any(|m| m["direction"] == "out") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never answered: {conversation}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}
