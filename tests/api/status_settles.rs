//! A WhatsApp send whose answer was lost, settled by its status webhook.
//!
//! Every WhatsApp send carries its outbox id as `biz_opaque_callback_data`
//! (the fake Graph API refuses one without it, and each is checked against
//! the store). The faulty front lets the fake take three replies and cuts the
//! connection before the answer: each is handed to a person as
//! `delivery_unknown` and not sent again. A forged status changes nothing; a
//! signed one settles: `delivered` closes the hand-over and gives the
//! conversation back to the bot (unless a person wrote meanwhile), `failed`
//! records the failure and leaves the hand-over open. On SQLite and (when
//! DATABASE_URL_TEST is set) PostgreSQL.

use crate::faults::{start_faulty_providers, Fault};
use crate::serve_helpers::*;
use frontdesk::store::{HumanReply, Owner};
use std::time::{Duration, Instant};

/// Settled by a `delivered` status: back with the bot.
const SETTLED: &str = "15557780001";
/// Settled by a `failed` status: stays with the person.
const FAILED: &str = "15557780002";
/// A person replies before the status comes: stays with the person.
const PERSON_REPLIED: &str = "15557780003";
const CUSTOMERS: [&str; 3] = [SETTLED, FAILED, PERSON_REPLIED];

/// A status webhook as the Cloud API posts it; `callback_data` is what the
/// send carried (`None`: a status without the field, as before).
fn status_payload(
    customer: &str,
    wamid: &str,
    status: &str,
    callback_data: Option<&str>,
) -> String {
    let mut entry = serde_json::json!({
        "id": wamid,
        "status": status,
        "timestamp": (frontdesk::store::now_ms() / 1000).to_string(),
        "recipient_id": customer,
    });
    if let Some(data) = callback_data {
        entry["biz_opaque_callback_data"] = data.into();
    }
    if status == "failed" {
        entry["errors"] = serde_json::json!([{"code": 131026, "title": "Message undeliverable"}]);
    }
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [entry]
        }}]}]
    })
    .to_string()
}

/// The one reply to `customer` the fake took: (wamid, outbox id it carried).
fn taken(app: &TestApp, customer: &str) -> (String, String) {
    let sends: Vec<Sent> = app
        .fake
        .sends()
        .into_iter()
        .filter(|s| s.to == customer)
        .collect();
    assert_eq!(sends.len(), 1, "{customer}: {sends:?}");
    let send = sends.into_iter().next().unwrap();
    (send.provider_id, send.callback_data.unwrap())
}

/// The bot's reply to `customer`: its status.
async fn reply_status(app: &TestApp, customer: &str) -> Vec<String> {
    let outgoing = app.outgoing(customer).await;
    outgoing
        .into_iter()
        .filter(|m| m.author == "bot")
        .map(|m| m.status)
        .collect()
}

async fn owner_of(app: &TestApp, customer: &str) -> Owner {
    let conversation = app
        .state
        .store
        .conversation_of(customer)
        .await
        .unwrap()
        .unwrap();
    app.state.store.owner(&conversation).await.unwrap()
}

async fn outbox_state(app: &TestApp, outbox_id: &str) -> (String, Option<String>) {
    let record = app
        .state
        .store
        .outbox_record(outbox_id)
        .await
        .unwrap()
        .expect("the callback data is an outbox id");
    (record.state, record.provider_message_id)
}

async fn open_hand_overs(app: &TestApp) -> i64 {
    app.state
        .store
        .count_queue("delivery_unknown")
        .await
        .unwrap()
}

async fn post_status(app: &TestApp, body: &str, signature: String) -> u16 {
    app.post_whatsapp(body, Some(signature))
        .await
        .status()
        .as_u16()
}

async fn a_status_settles_a_send_cut_after_it_was_written(
    database_url: Option<String>,
    name: &str,
) {
    let (base, faulty) = start_faulty_providers().await;
    for customer in CUSTOMERS {
        faulty.script(customer, &[Fault::AcceptThenReset]);
    }
    let app = spawn_app_with(
        name,
        database_url,
        Some((base, faulty.fake.clone())),
        |settings| {
            settings.workers = 2;
            settings.send_timeout_ms = 3_000;
        },
    )
    .await;
    for (n, customer) in CUSTOMERS.iter().enumerate() {
        let body = whatsapp_payload(customer, &format!("wamid.s.{n}"), "what are your hours?");
        assert_eq!(
            app.post_whatsapp(&body, Some(sign(&body))).await.status(),
            200
        );
    }

    // Each cut send is handed to a person, not sent again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_hand_overs(&app).await < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open_hand_overs(&app).await, 3);
    // Longer than any retry backoff: a resend would have happened by now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for customer in CUSTOMERS {
        assert_eq!(
            reply_status(&app, customer).await,
            ["unknown"],
            "{customer}"
        );
        assert_eq!(owner_of(&app, customer).await, Owner::Human, "{customer}");
        assert_eq!(faulty.attempts_to(customer).len(), 1, "{customer}");
    }

    // Every WhatsApp send named a real outbox row: the reply it carried.
    let whatsapp_sends: Vec<Sent> = app
        .fake
        .sends()
        .into_iter()
        .filter(|s| s.provider == "whatsapp")
        .collect();
    assert_eq!(whatsapp_sends.len(), 3, "{whatsapp_sends:?}");
    for send in &whatsapp_sends {
        let outbox_id = send.callback_data.as_deref().expect("callback data");
        let record = app
            .state
            .store
            .outbox_record(outbox_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{outbox_id} is no outbox row"));
        assert_eq!(record.text, send.text);
        assert_eq!(record.state, "unknown");
    }
    assert_eq!(*app.fake.refused.lock().unwrap(), 0);

    let (wamid, outbox_id) = taken(&app, SETTLED);
    let delivered = status_payload(SETTLED, &wamid, "delivered", Some(&outbox_id));

    // A forged status (signed with another secret) changes nothing.
    let forged = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"not-the-app-secret").unwrap();
        mac.update(delivered.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    assert_eq!(post_status(&app, &delivered, forged).await, 401);
    assert_eq!(app.post_whatsapp(&delivered, None).await.status(), 401);
    assert_eq!(
        outbox_state(&app, &outbox_id).await,
        ("unknown".into(), None)
    );
    assert_eq!(reply_status(&app, SETTLED).await, ["unknown"]);
    assert_eq!(owner_of(&app, SETTLED).await, Owner::Human);
    assert_eq!(open_hand_overs(&app).await, 3);

    // The genuine status settles it, in one go.
    let events_before = app
        .state
        .store
        .events_after(0, 100_000)
        .await
        .unwrap()
        .last()
        .map(|e| e.id)
        .unwrap_or(0);
    assert_eq!(post_status(&app, &delivered, sign(&delivered)).await, 200);
    assert_eq!(
        outbox_state(&app, &outbox_id).await,
        ("sent".into(), Some(wamid.clone()))
    );
    assert_eq!(reply_status(&app, SETTLED).await, ["delivered"]);
    assert_eq!(owner_of(&app, SETTLED).await, Owner::Bot);
    assert_eq!(open_hand_overs(&app).await, 2);
    let conversation = app
        .state
        .store
        .conversation_of(SETTLED)
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<String> = app
        .state
        .store
        .events_after(events_before, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.conversation_id.as_deref() == Some(conversation.as_str()))
        .map(|e| e.kind)
        .collect();
    for kind in ["status", "queue", "owner"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} event: {kinds:?}"
        );
    }
    // A retried webhook, then later statuses (without the field, as before):
    // the ordinary path, states only forward.
    assert_eq!(post_status(&app, &delivered, sign(&delivered)).await, 200);
    let read = status_payload(SETTLED, &wamid, "read", None);
    assert_eq!(post_status(&app, &read, sign(&read)).await, 200);
    assert_eq!(reply_status(&app, SETTLED).await, ["read"]);
    let late_sent = status_payload(SETTLED, &wamid, "sent", Some(&outbox_id));
    assert_eq!(post_status(&app, &late_sent, sign(&late_sent)).await, 200);
    assert_eq!(reply_status(&app, SETTLED).await, ["read"]);

    // `failed`: recorded, and the person still has to answer.
    let (failed_wamid, failed_outbox) = taken(&app, FAILED);
    let failed = status_payload(FAILED, &failed_wamid, "failed", Some(&failed_outbox));
    assert_eq!(post_status(&app, &failed, sign(&failed)).await, 200);
    assert_eq!(
        outbox_state(&app, &failed_outbox).await,
        ("failed".into(), Some(failed_wamid))
    );
    assert_eq!(reply_status(&app, FAILED).await, ["failed"]);
    assert_eq!(owner_of(&app, FAILED).await, Owner::Human);
    assert_eq!(open_hand_overs(&app).await, 2);
    let summary = app
        .state
        .store
        .open_queue()
        .await
        .unwrap()
        .into_iter()
        .find(|item| item.customer == FAILED)
        .expect("the hand-over is still open")
        .summary;
    assert!(
        summary.starts_with("reply did not reach the customer (131026: Message undeliverable)"),
        "{summary}"
    );

    // A person answered after the hand-over: the settled item closes, the
    // conversation stays theirs.
    let conversation = app
        .state
        .store
        .conversation_of(PERSON_REPLIED)
        .await
        .unwrap()
        .unwrap();
    app.state
        .store
        .reply_as_human(
            &conversation,
            &HumanReply {
                text: "Hi, we open at 8 every day but Monday.".into(),
                author: "owner".into(),
                template: None,
                tag: None,
            },
        )
        .await
        .unwrap();
    app.state.new_reply.notify_one();
    assert!(
        eventually(30, || app.fake.sends().iter().any(|s| s.to
            == PERSON_REPLIED
            && s.text.starts_with("Hi, we open at 8")))
        .await,
        "the person's reply was not sent"
    );
    let (person_wamid, person_outbox) = {
        let bot_send = app
            .fake
            .sends()
            .into_iter()
            .find(|s| s.to == PERSON_REPLIED && !s.text.starts_with("Hi, we open at 8"))
            .unwrap();
        (bot_send.provider_id, bot_send.callback_data.unwrap())
    };
    let sent = status_payload(PERSON_REPLIED, &person_wamid, "sent", Some(&person_outbox));
    assert_eq!(post_status(&app, &sent, sign(&sent)).await, 200);
    assert_eq!(
        outbox_state(&app, &person_outbox).await,
        ("sent".into(), Some(person_wamid))
    );
    assert_eq!(reply_status(&app, PERSON_REPLIED).await, ["sent"]);
    assert_eq!(owner_of(&app, PERSON_REPLIED).await, Owner::Human);
    assert_eq!(open_hand_overs(&app).await, 1);

    // Still exactly one copy of each bot reply at the provider.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for customer in CUSTOMERS {
        let bot_sends = app
            .fake
            .sends()
            .into_iter()
            .filter(|s| s.to == customer && !s.text.starts_with("Hi, we open at 8"))
            .count();
        assert_eq!(bot_sends, 1, "{customer}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_status_on_sqlite_settles_a_send_whose_answer_was_lost() {
    a_status_settles_a_send_cut_after_it_was_written(None, "status-settles-sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_status_on_postgres_settles_a_send_whose_answer_was_lost() {
    let Some(url) = postgres_database("status_settles").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    a_status_settles_a_send_cut_after_it_was_written(Some(url), "status-settles-postgres").await;
}
