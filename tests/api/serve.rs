//! `serve` end to end: signed webhooks in, replies out at fake providers, on
//! SQLite and (when DATABASE_URL_TEST is set, as in CI) on PostgreSQL.

use crate::serve_helpers::*;

async fn answers_a_whatsapp_message_end_to_end(app: TestApp) {
    let body = whatsapp_payload("15551234567", "wamid.in.1", "do u deliver to brooklyn?");
    let response = app.post_whatsapp(&body, Some(sign(&body))).await;
    assert_eq!(response.status(), 200);
    assert!(
        eventually(30, || !app.fake.sends().is_empty()).await,
        "no reply reached the fake provider"
    );
    let sends = app.fake.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].provider, "whatsapp");
    assert_eq!(sends[0].to, "15551234567");
    assert!(
        sends[0].text.to_lowercase().contains("deliver"),
        "{}",
        sends[0].text
    );
    assert_eq!(*app.fake.refused.lock().unwrap(), 0);

    // A provider retry of the same webhook is stored once and answered once.
    for _ in 0..3 {
        assert_eq!(
            app.post_whatsapp(&body, Some(sign(&body))).await.status(),
            200
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        app.fake.sends().len(),
        1,
        "a retried webhook was answered twice"
    );
    let (jobs, outbox, _) = app.state.store.depths().await.unwrap();
    assert_eq!((jobs, outbox), (0, 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_message_is_answered_once_on_sqlite() {
    answers_a_whatsapp_message_end_to_end(spawn_app("serve-sqlite", None, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_message_is_answered_once_on_postgres() {
    let Some(url) = postgres_database("answer").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    answers_a_whatsapp_message_end_to_end(spawn_app("serve-postgres", Some(url), None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_signature_is_refused_and_nothing_is_stored() {
    let app = spawn_app("serve-bad-signature", None, None).await;
    let body = whatsapp_payload("15550000001", "wamid.bad.1", "hello?");
    assert_eq!(app.post_whatsapp(&body, None).await.status(), 401);
    assert_eq!(
        app.post_whatsapp(&body, Some(sign("something else")))
            .await
            .status(),
        401
    );
    let tampered = body.replace("hello?", "hello!");
    assert_eq!(
        app.post_whatsapp(&tampered, Some(sign(&body)))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_whatsapp("{not json", Some(sign("{not json")))
            .await
            .status(),
        400
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.state.store.depths().await.unwrap(), (0, 0, 0));
    assert!(app.fake.sends().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_handshake_echoes_the_challenge_only_with_the_right_token() {
    let app = spawn_app("serve-handshake", None, None).await;
    let url = |token: &str| {
        format!("{}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444", app.base)
    };
    let ok = app.client.get(url(VERIFY_TOKEN)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    assert_eq!(
        app.client.get(url("wrong")).send().await.unwrap().status(),
        403
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_queues_an_item_and_the_bot_stays_silent_until_resolved() {
    let app = spawn_app("serve-escalation", None, None).await;
    let first = whatsapp_payload(
        "15557654321",
        "wamid.esc.1",
        "I want to talk to a real person please",
    );
    assert_eq!(
        app.post_whatsapp(&first, Some(sign(&first))).await.status(),
        200
    );
    assert!(eventually(30, || app.fake.sends().len() == 1).await);
    let queue = app.state.store.open_queue().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].reason, "human_requested");
    assert_eq!(queue[0].customer, "15557654321");

    let second = whatsapp_payload("15557654321", "wamid.esc.2", "what are your hours?");
    assert_eq!(
        app.post_whatsapp(&second, Some(sign(&second)))
            .await
            .status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        app.fake.sends().len(),
        1,
        "the bot talked over the human queue"
    );

    app.state
        .store
        .resolve_queue_item(&queue[0].id)
        .await
        .unwrap();
    let third = whatsapp_payload(
        "15557654321",
        "wamid.esc.3",
        "what time do you open on saturday?",
    );
    assert_eq!(
        app.post_whatsapp(&third, Some(sign(&third))).await.status(),
        200
    );
    assert!(
        eventually(30, || app.fake.sends().len() == 2).await,
        "the bot did not take the conversation back"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_through_twilio_is_signature_checked_and_answered() {
    let app = spawn_app("serve-sms", None, None).await;
    let fields: Vec<(String, String)> = [
        ("MessageSid", "SM1234567890abcdef1234567890abcdef"),
        ("AccountSid", TWILIO_SID),
        ("From", "+15559876543"),
        ("To", "+15550001111"),
        ("Body", "are you open on sunday?"),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = format!("{}/webhooks/twilio", app.base);
    let body = serde_urlencoded::to_string(&fields).unwrap();
    let post = |signature: String| {
        app.client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body.clone())
            .send()
    };
    assert_eq!(post("bm90IGl0".into()).await.unwrap().status(), 401);
    let signature = frontdesk::channels::twilio::signature(TWILIO_TOKEN, &url, &fields);
    let response = post(signature).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<Response></Response>"));
    assert!(eventually(30, || !app.fake.sends().is_empty()).await);
    let sends = app.fake.sends();
    assert_eq!(sends[0].provider, "twilio");
    assert_eq!(sends[0].to, "+15559876543");
    assert!(sends[0].text.chars().count() <= 320);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_answer_each_message_exactly_once() {
    let Some(url) = postgres_database("two_servers").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let fake = start_fake_providers().await;
    let first = spawn_app("serve-pg-a", Some(url.clone()), Some(fake.clone())).await;
    let second = spawn_app("serve-pg-b", Some(url), Some(fake.clone())).await;
    let total = 24;
    for n in 0..total {
        let body = whatsapp_payload(
            &format!("1555300{n:04}"),
            &format!("wamid.two.{n}"),
            "do you have vegan cupcakes?",
        );
        // Every message is posted to both servers, as a provider retry to another replica would be.
        for app in [&first, &second] {
            assert_eq!(
                app.post_whatsapp(&body, Some(sign(&body))).await.status(),
                200
            );
        }
    }
    assert!(
        eventually(90, || fake.1.sends().len() >= total).await,
        "only {} of {total} answered",
        fake.1.sends().len()
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let sends = fake.1.sends();
    assert_eq!(sends.len(), total, "some message was answered twice");
    let mut recipients: Vec<String> = sends.iter().map(|s| s.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), total);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_status_callbacks_move_the_reply_forward_only() {
    let app = spawn_app("serve-status", None, None).await;
    let body = whatsapp_payload("15554443333", "wamid.status.1", "are you open on sunday?");
    assert_eq!(
        app.post_whatsapp(&body, Some(sign(&body))).await.status(),
        200
    );
    assert!(eventually(30, || app.fake.sends().len() == 1).await);
    let status = |state: &str| {
        serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "statuses": [{"id": "wamid.out.1", "status": state, "timestamp": "1764390100", "recipient_id": "15554443333"}]
        }}]}]})
        .to_string()
    };
    let reply_status = || async {
        let conversation = app
            .state
            .store
            .conversation_of("15554443333")
            .await
            .unwrap()
            .unwrap();
        let messages = app.state.store.messages(&conversation).await.unwrap();
        messages
            .iter()
            .find(|m| m.direction == "out")
            .map(|m| m.status.clone())
            .unwrap()
    };
    for state in ["delivered", "read", "delivered"] {
        let body = status(state);
        assert_eq!(
            app.post_whatsapp(&body, Some(sign(&body))).await.status(),
            200
        );
    }
    assert_eq!(
        reply_status().await,
        "read",
        "a late 'delivered' must not move 'read' back"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_reply_from_the_messenger_app_pauses_the_bot() {
    let app = spawn_app("serve-echo", None, None).await;
    let page = "112233445566";
    let event = |mid: &str, sender: &str, recipient: &str, text: &str, echo: bool| {
        let mut message = serde_json::json!({"mid": mid, "text": text});
        if echo {
            message["is_echo"] = serde_json::json!(true);
            message["app_id"] = serde_json::json!(1517);
        }
        serde_json::json!({"object": "page", "entry": [{"id": page, "time": 1764390000000i64, "messaging": [
            {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": 1764390000000i64, "message": message}
        ]}]})
        .to_string()
    };
    let post = |body: String| {
        let signature = sign(&body);
        app.client
            .post(format!("{}/webhooks/meta", app.base))
            .header("content-type", "application/json")
            .header("X-Hub-Signature-256", signature)
            .body(body)
            .send()
    };
    // Control: another customer on the same page gets an answer from the bot.
    assert_eq!(
        post(event(
            "m_in_0",
            "7000",
            page,
            "do you deliver to brooklyn?",
            false
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    assert!(
        eventually(30, || app.fake.sends().len() == 1).await,
        "the bot did not answer on Messenger"
    );
    assert_eq!(app.fake.sends()[0].provider, "messenger");
    // The bot's own reply comes back as an echo with the mid we got: not a person.
    assert_eq!(
        post(event(
            "messenger.out.1",
            page,
            "7000",
            &app.fake.sends()[0].text,
            true
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    // The owner answers another customer from the Messenger app (an echo: sender is the page).
    assert_eq!(
        post(event(
            "m_echo_1",
            page,
            "7001",
            "Hi! Jasmine here, I'll sort this out.",
            true
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    // Then the customer writes: the bot must stay out of it.
    assert_eq!(
        post(event(
            "m_in_1",
            "7001",
            page,
            "great, do you deliver to brooklyn?",
            false
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        app.fake.sends().len(),
        1,
        "the bot talked over a person: {:?}",
        app.fake.sends()
    );
    assert_eq!(*app.fake.refused.lock().unwrap(), 0);
    let (jobs, _, _) = app.state.store.depths().await.unwrap();
    assert_eq!(
        jobs, 0,
        "the message was processed (and silenced), not left waiting"
    );
    // The customer whose echo was the bot's own reply is still the bot's.
    assert_eq!(
        post(event(
            "m_in_2",
            "7000",
            page,
            "and are you open sunday?",
            false
        ))
        .await
        .unwrap()
        .status(),
        200
    );
    assert!(
        eventually(30, || app.fake.sends().len() == 2).await,
        "the bot's own echo paused it"
    );
    app.stop().await;
}
