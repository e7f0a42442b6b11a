//! One customer's data on both stores: two customers with messages, a form, a
//! note, a queue item and photos (one of them also on SMS, linked by phone
//! number, with a reply stuck in the outbox); exporting one holds exactly
//! theirs, erasing one leaves the other untouched and theirs gone everywhere,
//! photo files included; the routes need credentials (and CSRF with a
//! cookie); the CLI finds, exports and erases; retention deletes old
//! conversations, keeps recent ones and those with an open queue item, from
//! the command line and from `serve`'s periodic task.

use crate::helpers::{scratch, stderr, stdout};
use crate::inbox_api::{sign_in, Owner, PASSWORD};
use crate::serve_helpers::*;
use std::io::Read;
use std::process::{Command, Output};
use std::time::Duration;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-alex-lemon-tart";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0-robin-wedding-cake";
const ALEX: &str = "15550007001";
const ROBIN: &str = "15550007002";
const ROBIN_SMS: &str = "+15550007002";
const DAY_MS: i64 = 24 * 3600 * 1000;

fn now_secs() -> i64 {
    frontdesk::store::now_ms() / 1000
}

fn whatsapp_message(from: &str, name: &str, wamid: &str, message: serde_json::Value) -> String {
    let mut message = message;
    message["from"] = from.into();
    message["id"] = wamid.into();
    message["timestamp"] = now_secs().to_string().into();
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [message]
        }}]}]
    })
    .to_string()
}

fn text(from: &str, name: &str, wamid: &str, body: &str) -> String {
    whatsapp_message(
        from,
        name,
        wamid,
        serde_json::json!({"type": "text", "text": {"body": body}}),
    )
}

fn image(from: &str, name: &str, wamid: &str, media_id: &str, mime: &str, caption: &str) -> String {
    whatsapp_message(
        from,
        name,
        wamid,
        serde_json::json!({"type": "image", "image": {"mime_type": mime, "sha256": "x", "id": media_id, "caption": caption}}),
    )
}

/// Posts a WhatsApp message and waits for the bot's reply to that customer.
async fn say(app: &TestApp, from: &str, body: &str) {
    let before = sends_to(app, from);
    assert_eq!(
        app.post_whatsapp(body, Some(sign(body))).await.status(),
        200
    );
    assert!(
        eventually(60, || sends_to(app, from) > before).await,
        "no reply to {from}: {:?}",
        app.fake.sends()
    );
}

fn sends_to(app: &TestApp, to: &str) -> usize {
    app.fake.sends().iter().filter(|s| s.to == to).count()
}

/// Whether `deadline` has passed; says what was waited for when it has.
async fn tick(deadline: std::time::Instant, what: &str) {
    assert!(std::time::Instant::now() < deadline, "timed out: {what}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn deadline(seconds: u64) -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(seconds)
}

async fn conversations(app: &TestApp, owner: &Owner) -> Vec<serde_json::Value> {
    owner.get(app, "/api/conversations?view=all").await["conversations"]
        .as_array()
        .unwrap()
        .clone()
}

/// The conversation with `address` on `channel`, if listed.
async fn listed(
    app: &TestApp,
    owner: &Owner,
    channel: &str,
    address: &str,
) -> Option<serde_json::Value> {
    conversations(app, owner)
        .await
        .into_iter()
        .find(|c| c["channel"] == channel && c["contact"]["address"] == address)
}

/// The stored attachments of one conversation's messages.
fn attachments_of(detail: &serde_json::Value) -> Vec<serde_json::Value> {
    detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["attachments"].as_array().cloned().unwrap_or_default())
        .collect()
}

async fn stored_photo(app: &TestApp, owner: &Owner, conversation_id: &str) -> String {
    let path = format!("/api/conversations/{conversation_id}");
    let until = deadline(30);
    loop {
        let found = attachments_of(&owner.get(app, &path).await);
        if let Some(stored) = found.iter().find(|a| a["status"] == "stored") {
            return stored["id"].as_str().unwrap().to_string();
        }
        tick(until, "the photo is stored").await;
    }
}

/// `contact.json` and the other files of an export zip.
fn unzip(bytes: &[u8]) -> (serde_json::Value, Vec<(String, Vec<u8>)>) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut document = None;
    let mut files = Vec::new();
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        if file.name() == "contact.json" {
            document = Some(serde_json::from_slice(&content).unwrap());
        } else {
            files.push((file.name().to_string(), content));
        }
    }
    (document.expect("contact.json in the zip"), files)
}

async fn export(app: &TestApp, owner: &Owner, contact_id: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/contacts/{contact_id}/export", app.base))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap()
}

/// Every message text in an export.
fn texts(document: &serde_json::Value) -> Vec<String> {
    document["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap().clone())
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

/// `frontdesk …` against the app's store.
fn cli(app: &TestApp, database: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    command
        .current_dir(crate::helpers::repo())
        .env("FRONTDESK_DATA_DIR", &app.state.settings.data_dir)
        .env_remove("FRONTDESK_RETENTION_DAYS")
        .stdin(std::process::Stdio::null())
        .args(args);
    match database {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command.output().expect("the frontdesk binary runs")
}

async fn signed_in_app(
    name: &str,
    database: Option<String>,
    configure: impl FnOnce(&mut frontdesk::config::Settings),
) -> (TestApp, Owner) {
    let app = spawn_app_with(name, database, None, configure).await;
    frontdesk::http::auth::set_owner_password(&app.state.store, PASSWORD)
        .await
        .unwrap();
    let owner = sign_in(&app, PASSWORD).await.expect("signed in");
    (app, owner)
}

async fn export_and_erase(name: &str, database: Option<String>) {
    // Twilio sends go nowhere: Robin's SMS reply waits in the outbox, retried.
    let (app, owner) = signed_in_app(name, database.clone(), |settings| {
        settings.twilio.base_url = Some("http://127.0.0.1:9".into());
    })
    .await;
    app.fake.add_media("MEDIA-ALEX", "image/png", PNG);
    app.fake.add_media("MEDIA-ROBIN", "image/jpeg", JPEG);

    say(
        &app,
        ALEX,
        &text(ALEX, "Alex", "wamid.alex.1", "are you open sunday?"),
    )
    .await;
    let alex_photo = image(
        ALEX,
        "Alex",
        "wamid.alex.2",
        "MEDIA-ALEX",
        "image/png",
        "a lemon tart like this",
    );
    say(&app, ALEX, &alex_photo).await;

    let robin_form = text(
        ROBIN,
        "Robin",
        "wamid.robin.1",
        "I'd like to order a custom cake for 20 people",
    );
    say(&app, ROBIN, &robin_form).await;
    let robin_photo = image(
        ROBIN,
        "Robin",
        "wamid.robin.2",
        "MEDIA-ROBIN",
        "image/jpeg",
        "a wedding cake like this one",
    );
    say(&app, ROBIN, &robin_photo).await;
    let robin_person = text(
        ROBIN,
        "Robin",
        "wamid.robin.3",
        "can I talk to a real person please",
    );
    say(&app, ROBIN, &robin_person).await;
    app.post_sms(
        ROBIN_SMS,
        "SM0robin0000000000000000000000001",
        "I'd like to order a custom cake for 20 people",
    )
    .await;

    let alex = listed(&app, &owner, "whatsapp", ALEX)
        .await
        .expect("Alex's conversation");
    let alex_id = alex["id"].as_str().unwrap().to_string();
    let alex_contact = alex["contact"]["id"].as_str().unwrap().to_string();
    let robin = listed(&app, &owner, "whatsapp", ROBIN)
        .await
        .expect("Robin's conversation");
    let robin_id = robin["id"].as_str().unwrap().to_string();
    let robin_contact = robin["contact"]["id"].as_str().unwrap().to_string();
    assert_ne!(alex_contact, robin_contact);
    let until = deadline(60);
    let robin_sms_id = loop {
        if let Some(sms) = listed(&app, &owner, "sms", ROBIN_SMS).await {
            let id = sms["id"].as_str().unwrap().to_string();
            let detail = owner.get(&app, &format!("/api/conversations/{id}")).await;
            let replied = detail["messages"].as_array().unwrap().iter();
            if replied
                .clone()
                .any(|m| m["direction"] == "out" && m["channel"] == "sms")
            {
                break id;
            }
        }
        tick(until, "the bot's SMS reply is queued").await;
    };
    let (_, unsent, _) = app.state.store.depths().await.unwrap();
    assert!(unsent >= 1, "Robin's SMS reply waits in the outbox");
    let note = owner
        .post(
            &app,
            &format!("/api/conversations/{robin_id}/notes"),
            serde_json::json!({"text": "Robin wants the cake by the 14th"}),
        )
        .await;
    assert_eq!(note.status(), 201);
    let alex_photo_id = stored_photo(&app, &owner, &alex_id).await;
    let robin_photo_id = stored_photo(&app, &owner, &robin_id).await;
    let data_dir = app.state.settings.data_dir.clone();
    let photo_file = |id: &str| frontdesk::attachments::path_of(&data_dir, id);
    assert!(photo_file(&robin_photo_id).exists());

    // Alex's export holds Alex's and nothing of Robin's.
    let response = export(&app, &owner, &alex_contact).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let (alex_export, alex_files) = unzip(&response.bytes().await.unwrap());
    assert_eq!(alex_export["format"], "frontdesk-contact-export");
    assert_eq!(alex_export["contacts"].as_array().unwrap().len(), 1);
    assert_eq!(alex_export["contacts"][0]["address"], ALEX);
    let alex_texts = texts(&alex_export);
    assert!(
        alex_texts.iter().any(|t| t == "are you open sunday?"),
        "{alex_texts:?}"
    );
    assert!(
        alex_texts
            .iter()
            .any(|t| t.contains("a lemon tart like this")),
        "{alex_texts:?}"
    );
    let outgoing = alex_export["conversations"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .count();
    assert!(
        outgoing >= 2,
        "the bot's replies are Alex's too: {alex_export}"
    );
    let whole = alex_export.to_string();
    for robins in [
        ROBIN,
        "Robin",
        "custom cake",
        "wedding",
        "the 14th",
        robin_photo_id.as_str(),
    ] {
        assert!(
            !whole.contains(robins),
            "`{robins}` in Alex's export: {whole}"
        );
    }
    assert_eq!(alex_files.len(), 1, "one photo");
    assert_eq!(alex_files[0].0, format!("attachments/{alex_photo_id}.png"));
    assert_eq!(alex_files[0].1, PNG);

    // Robin's covers the linked SMS contact, the note, the form, the queue item and the photo.
    let response = export(&app, &owner, &robin_contact).await;
    assert_eq!(response.status(), 200);
    let (robin_export, robin_files) = unzip(&response.bytes().await.unwrap());
    let channels: Vec<&str> = robin_export["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["whatsapp", "sms"], "{robin_export}");
    let robin_texts = texts(&robin_export);
    assert!(
        robin_texts.iter().any(|t| t.contains("custom cake")),
        "{robin_texts:?}"
    );
    let conversation_on = |channel: &str| {
        robin_export["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == channel)
            .unwrap()
            .clone()
    };
    let (whatsapp, sms) = (conversation_on("whatsapp"), conversation_on("sms"));
    assert_eq!(
        sms["messages"][0]["text"],
        "I'd like to order a custom cake for 20 people"
    );
    // The form in progress on SMS, and the one handed over on WhatsApp: its
    // captured fields on the queue item.
    assert!(sms["form"]["form"].is_string(), "{sms}");
    let fields = &whatsapp["queue_items"][0]["fields"];
    assert_eq!(fields["servings"], 20, "{whatsapp}");
    assert_eq!(fields["photo"], robin_photo_id.as_str(), "{whatsapp}");
    assert_eq!(
        whatsapp["notes"][0]["text"],
        "Robin wants the cake by the 14th"
    );
    assert!(!robin_export.to_string().contains(ALEX));
    assert_eq!(
        robin_files,
        vec![(format!("attachments/{robin_photo_id}.jpg"), JPEG.to_vec())]
    );

    // Without credentials, or with a cookie but no CSRF token: refused, nothing erased.
    let bare = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", app.base);
    let export_path = format!("/api/contacts/{robin_contact}/export");
    let erase_path = format!("/api/contacts/{robin_contact}/erase");
    assert_eq!(
        bare.get(url(&export_path)).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        bare.post(url(&erase_path)).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        bare.get(url("/api/contacts?q=robin"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let no_csrf = bare
        .post(url(&erase_path))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    assert!(listed(&app, &owner, "whatsapp", ROBIN).await.is_some());

    // Found by a phone number written any way.
    let found = owner
        .get(&app, "/api/contacts?q=%2B1%20(555)%20000-7002")
        .await;
    let found_ids: Vec<&str> = found["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(found_ids.len(), 2, "{found}");
    assert!(found_ids.contains(&robin_contact.as_str()), "{found}");

    let erased = owner.post(&app, &erase_path, serde_json::json!({})).await;
    assert_eq!(erased.status(), 200);
    let erased: serde_json::Value = erased.json().await.unwrap();
    assert_eq!(erased["contacts"], 2, "{erased}");
    assert_eq!(erased["conversations"], 2, "{erased}");
    assert!(erased["unsent_replies"].as_u64().unwrap() >= 1, "{erased}");
    assert_eq!(erased["photo_files"], 1, "{erased}");

    // Robin is gone everywhere: lists, conversations, search, photos, outbox, events.
    assert!(listed(&app, &owner, "whatsapp", ROBIN).await.is_none());
    assert!(listed(&app, &owner, "sms", ROBIN_SMS).await.is_none());
    for id in [&robin_id, &robin_sms_id] {
        let gone = app
            .client
            .get(url(&format!("/api/conversations/{id}")))
            .header("cookie", &owner.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
    }
    assert_eq!(export(&app, &owner, &robin_contact).await.status(), 404);
    assert!(
        owner.get(&app, "/api/contacts?q=15550007002").await["contacts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(owner.get(&app, "/api/contacts?q=robin").await["contacts"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(owner
        .get(&app, "/api/conversations?view=all&q=wedding")
        .await["conversations"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        !photo_file(&robin_photo_id).exists(),
        "the photo file is deleted"
    );
    let photo = app
        .client
        .get(url(&format!("/api/attachments/{robin_photo_id}")))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), 404);
    let (answers, replies, _) = app.state.store.depths().await.unwrap();
    assert_eq!(
        (answers, replies),
        (0, 0),
        "no answer or reply is pending for Robin"
    );
    let needs_you = owner
        .get(&app, "/api/conversations?view=needs_you")
        .await
        .to_string();
    assert!(!needs_you.contains(ROBIN), "{needs_you}");
    let events = app.state.store.events_after(0, 10_000).await.unwrap();
    for event in events.iter().filter(|e| {
        e.conversation_id
            .as_deref()
            .is_some_and(|c| c == robin_id || c == robin_sms_id)
    }) {
        assert_eq!(event.kind, "erased", "{event:?}");
    }
    let sends_before = sends_to(&app, ROBIN);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        sends_to(&app, ROBIN),
        sends_before,
        "nothing is sent to Robin afterwards"
    );

    // Alex is untouched: the same export, the photo still served.
    let (after, files_after) = unzip(
        &export(&app, &owner, &alex_contact)
            .await
            .bytes()
            .await
            .unwrap(),
    );
    assert_eq!(after["contacts"], alex_export["contacts"]);
    assert_eq!(after["conversations"], alex_export["conversations"]);
    assert_eq!(files_after, alex_files);
    let photo = app
        .client
        .get(url(&format!("/api/attachments/{alex_photo_id}")))
        .header("cookie", &owner.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), 200);

    // The command line: find, export, refuse to erase without --yes, erase.
    let database = database.as_deref();
    let found = cli(&app, database, &["contact", "find", "Alex"]);
    assert!(found.status.success(), "{}", stderr(&found));
    assert!(stdout(&found).contains(&alex_contact), "{}", stdout(&found));
    let zip_path = scratch(&format!("{name}-cli")).join("alex.zip");
    let zip_arg = zip_path.to_str().unwrap();
    let exported = cli(
        &app,
        database,
        &["contact", "export", &alex_contact, "--out", zip_arg],
    );
    assert!(exported.status.success(), "{}", stderr(&exported));
    let (from_cli, _) = unzip(&std::fs::read(&zip_path).unwrap());
    assert_eq!(from_cli["conversations"], alex_export["conversations"]);
    let again = cli(
        &app,
        database,
        &["contact", "export", &alex_contact, "--out", zip_arg],
    );
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    let refused = cli(&app, database, &["contact", "erase", &alex_contact]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    assert!(listed(&app, &owner, "whatsapp", ALEX).await.is_some());
    let erased = cli(
        &app,
        database,
        &["contact", "erase", &alex_contact, "--yes"],
    );
    assert!(erased.status.success(), "{}", stderr(&erased));
    assert!(
        stdout(&erased).contains("erased 1 contact(s), 1 conversation(s)"),
        "{}",
        stdout(&erased)
    );
    assert!(!photo_file(&alex_photo_id).exists());
    assert!(conversations(&app, &owner).await.is_empty());
    let unknown = cli(
        &app,
        database,
        &["contact", "erase", &alex_contact, "--yes"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_and_erasing_one_customer_on_sqlite() {
    export_and_erase("contacts-erase", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_and_erasing_one_customer_on_postgres() {
    let Some(url) = postgres_database("contacts_erase").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    export_and_erase("contacts-erase-pg", Some(url)).await;
}

/// Moves a conversation's activity `days` into the past, as if it were old.
async fn age(database_url: &str, conversation_id: &str, days: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    for statement in [
        "UPDATE conversations SET updated_ms = updated_ms - $1 WHERE id = $2",
        "UPDATE messages SET created_ms = created_ms - $1 WHERE conversation_id = $2",
        "UPDATE notes SET created_ms = created_ms - $1 WHERE conversation_id = $2",
    ] {
        sqlx::query(statement)
            .bind(days * DAY_MS)
            .bind(conversation_id)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn retention(name: &str, database: Option<String>) {
    let (app, owner) = signed_in_app(name, database.clone(), |_| {}).await;
    let url = database
        .clone()
        .unwrap_or_else(|| frontdesk::store::Store::sqlite_url(&app.state.settings.data_dir));
    app.fake.add_media("MEDIA-OLD", "image/png", PNG);
    const OLD: &str = "15550008001";
    const WAITING: &str = "15550008002";
    const RECENT: &str = "15550008003";
    say(
        &app,
        OLD,
        &text(OLD, "Olga", "wamid.old.1", "are you open sunday?"),
    )
    .await;
    say(
        &app,
        OLD,
        &image(
            OLD,
            "Olga",
            "wamid.old.2",
            "MEDIA-OLD",
            "image/png",
            "this one",
        ),
    )
    .await;
    say(
        &app,
        WAITING,
        &text(
            WAITING,
            "Wes",
            "wamid.wait.1",
            "can I talk to a real person please",
        ),
    )
    .await;
    say(
        &app,
        RECENT,
        &text(RECENT, "Rae", "wamid.recent.1", "are you open sunday?"),
    )
    .await;
    let mut ids = Vec::new();
    for address in [OLD, WAITING, RECENT] {
        let conversation = listed(&app, &owner, "whatsapp", address).await.unwrap();
        ids.push(conversation["id"].as_str().unwrap().to_string());
    }
    let [old, waiting, recent] = <[String; 3]>::try_from(ids).unwrap();
    let needs_you = owner.get(&app, "/api/conversations?view=needs_you").await;
    assert_eq!(
        needs_you["conversations"][0]["id"],
        waiting.as_str(),
        "{needs_you}"
    );
    let old_photo = stored_photo(&app, &owner, &old).await;
    let old_file = frontdesk::attachments::path_of(&app.state.settings.data_dir, &old_photo);
    assert!(old_file.exists());
    age(&url, &old, 40).await;
    age(&url, &waiting, 40).await;

    let database = database.as_deref();
    let dry = cli(
        &app,
        database,
        &["retention", "apply", "--days", "30", "--dry-run"],
    );
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(
        stdout(&dry).starts_with("1 conversation(s)"),
        "{}",
        stdout(&dry)
    );
    let off = cli(&app, database, &["retention", "apply"]);
    assert_eq!(
        off.status.code(),
        Some(1),
        "no retention set: nothing to apply"
    );
    let applied = cli(&app, database, &["retention", "apply", "--days", "30"]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert!(
        stdout(&applied).contains("1 contact(s), 1 conversation(s)"),
        "{}",
        stdout(&applied)
    );
    let left: Vec<String> = conversations(&app, &owner)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!left.contains(&old), "the old conversation is deleted");
    assert!(
        left.contains(&waiting),
        "an open queue item keeps its conversation"
    );
    assert!(left.contains(&recent), "a recent conversation is kept");
    assert!(!old_file.exists(), "with its photo file");
    assert!(
        owner.get(&app, "/api/contacts?q=15550008001").await["contacts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let data_dir = app.state.settings.data_dir.clone();
    app.stop().await;

    // `serve` applies `[retention] days` by itself, from its start.
    age(&url, &recent, 40).await;
    let (again, owner) = signed_in_app(
        &format!("{name}-serve"),
        database.map(str::to_string),
        |settings| {
            settings.data_dir = data_dir;
            settings.retention.days = Some(30);
        },
    )
    .await;
    let until = deadline(30);
    while conversations(&again, &owner)
        .await
        .iter()
        .any(|c| c["id"] == recent.as_str())
    {
        tick(
            until,
            "serve's retention pass deletes the aged conversation",
        )
        .await;
    }
    let left: Vec<String> = conversations(&again, &owner)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        vec![waiting],
        "only the conversation waiting for a person is left"
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_conversations_and_keeps_recent_ones_on_sqlite() {
    retention("contacts-retention", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_conversations_and_keeps_recent_ones_on_postgres() {
    let Some(url) = postgres_database("contacts_retention").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    retention("contacts-retention-pg", Some(url)).await;
}
