//! Owner alerts: an escalation texts the owner's own phone once, with the first
//! line of the customer's message and the inbox link, and not again for the same
//! conversation within ten minutes.

use crate::serve_helpers::*;
use std::time::Duration;

const OWNER_PHONE: &str = "+15559990000";
const CUSTOMER: &str = "15557770001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_texts_the_owner_once_per_conversation() {
    let app = spawn_app_with("alerts-sms", None, None, |settings| {
        settings.alerts.sms_to = Some(OWNER_PHONE.into());
        settings.public_url = Some("https://shop.example".into());
    })
    .await;
    let alerts = |app: &TestApp| -> Vec<Sent> {
        app.fake
            .sends()
            .into_iter()
            .filter(|sent| sent.provider == "twilio" && sent.to == OWNER_PHONE)
            .collect()
    };

    let first = whatsapp_payload(
        CUSTOMER,
        "wamid.alert.1",
        "can I talk to a real person please\nit is about the cake for Saturday, order 4417",
    );
    assert_eq!(
        app.post_whatsapp(&first, Some(sign(&first))).await.status(),
        200
    );
    assert!(
        eventually(30, || !alerts(&app).is_empty()).await,
        "no alert reached the owner's phone: {:?}",
        app.fake.sends()
    );
    let conversation = app
        .state
        .store
        .conversation_of(CUSTOMER)
        .await
        .unwrap()
        .expect("the conversation is stored");
    let sent = alerts(&app);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let text = &sent[0].text;
    assert!(
        text.starts_with(
            "frontdesk: a WhatsApp customer needs you (human_requested): can I talk to a real person please"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "https://shop.example/conversations/{conversation}"
        )),
        "{text}"
    );
    assert!(
        !text.contains("4417") && !text.contains("Saturday"),
        "the alert repeats more than the first line: {text}"
    );

    // Hand the conversation back, then the customer escalates again at once:
    // a new queue item opens, but the owner was alerted minutes ago.
    let queue = app.state.store.open_queue().await.unwrap();
    assert_eq!(queue.len(), 1);
    app.state
        .store
        .resolve_queue_item(&queue[0].id)
        .await
        .unwrap();
    let replies_before = app
        .fake
        .sends()
        .iter()
        .filter(|sent| sent.provider == "whatsapp")
        .count();
    let second = whatsapp_payload(
        CUSTOMER,
        "wamid.alert.2",
        "I still need to speak to a human, please",
    );
    assert_eq!(
        app.post_whatsapp(&second, Some(sign(&second)))
            .await
            .status(),
        200
    );
    assert!(
        eventually(30, || app
            .fake
            .sends()
            .iter()
            .filter(|sent| sent.provider == "whatsapp")
            .count()
            > replies_before)
        .await,
        "the second message was not answered"
    );
    assert!(
        app.state
            .store
            .open_queue_item(&conversation)
            .await
            .unwrap()
            .is_some(),
        "the second message did not open a queue item"
    );
    // Several polls of the event log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        alerts(&app).len(),
        1,
        "a second alert within ten minutes: {:?}",
        alerts(&app)
    );
    app.stop().await;
}
