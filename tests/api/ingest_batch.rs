//! The group commit's per-message semantics, on a real SQLite store: a
//! provider id seen twice (in one batch or across batches) is a duplicate,
//! not an error, and one message that cannot be written fails alone.

use frontdesk::channels::InboundMessage;
use frontdesk::domain::Channel;
use frontdesk::store::{BatchItem, Ingested, NewAttachment, Store};

fn message(sender: &str, provider_id: &str) -> BatchItem {
    BatchItem {
        message: InboundMessage {
            channel: Channel::Whatsapp,
            provider_message_id: provider_id.into(),
            sender: sender.into(),
            business_account: "106540352242922".into(),
            sender_name: None,
            text: "are you open on sunday?".into(),
            timestamp_ms: 1_764_390_000_000,
            is_echo: false,
            thread_ref: None,
            subject: None,
            attachments: Vec::new(),
        },
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn a_batch_keeps_each_messages_dedup_and_a_bad_message_fails_alone() {
    let data = crate::helpers::scratch("ingest-batch");
    let store = Store::connect(&Store::sqlite_url(&data)).await.unwrap();

    let first = [
        message("15550000001", "wamid.a"),
        message("15550000002", "wamid.b"),
        message("15550000001", "wamid.a"), // the provider's retry, in the same batch
    ];
    let results = store.ingest_batch(&first.iter().collect::<Vec<_>>()).await;
    assert!(
        matches!(results[0], Ok(Ingested::New { .. })),
        "{results:?}"
    );
    assert!(
        matches!(results[1], Ok(Ingested::New { .. })),
        "{results:?}"
    );
    assert!(matches!(results[2], Ok(Ingested::Duplicate)), "{results:?}");

    // A message whose attachment id is given twice cannot be written.
    let mut bad = message("15550000004", "wamid.d");
    let attachment = NewAttachment {
        id: "same-id".into(),
        source_kind: "whatsapp_media".into(),
        source_ref: "media-1".into(),
        declared_type: Some("image/jpeg".into()),
        settled: None,
    };
    bad.attachments = vec![attachment.clone(), attachment];
    let second = [
        message("15550000002", "wamid.b"), // a retry across batches
        message("15550000003", "wamid.c"),
        bad,
    ];
    let results = store.ingest_batch(&second.iter().collect::<Vec<_>>()).await;
    assert!(matches!(results[0], Ok(Ingested::Duplicate)), "{results:?}");
    assert!(
        matches!(results[1], Ok(Ingested::New { .. })),
        "{results:?}"
    );
    assert!(results[2].is_err(), "{results:?}");

    assert_eq!(store.count_messages("in").await.unwrap(), 3);
    assert_eq!(
        store.depths().await.unwrap().0,
        3,
        "one job per new message"
    );
}
