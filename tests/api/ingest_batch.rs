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

fn from(channel: Channel, sender: &str, provider_id: &str, name: Option<&str>) -> BatchItem {
    let mut item = message(sender, provider_id);
    item.message.channel = channel;
    item.message.sender_name = name.map(str::to_string);
    item
}

/// What a store holds, without its random ids: each contact with the contact
/// it is linked to, each conversation, each message, and the job and event counts.
async fn rows_of(url: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let queries: [&'static str; 5] = [
        "SELECT c.channel || ' ' || c.address || ' ' || COALESCE(c.display_name, '-') || ' -> ' || COALESCE(r.channel || ' ' || r.address, '-') AS line \
         FROM contacts c LEFT JOIN contacts r ON r.id = c.linked_to ORDER BY line",
        "SELECT k.channel || ' ' || k.address || ' ' || v.business_account || ' ' || v.status || ' ' || v.owner AS line \
         FROM conversations v JOIN contacts k ON k.id = v.contact_id ORDER BY line",
        "SELECT m.provider_message_id || ' ' || m.direction || ' ' || m.status || ' ' || k.address AS line \
         FROM messages m JOIN conversations v ON v.id = m.conversation_id JOIN contacts k ON k.id = v.contact_id ORDER BY line",
        "SELECT 'jobs ' || COUNT(*) AS line FROM jobs j JOIN messages m ON m.id = j.message_id WHERE j.state = 'pending'",
        "SELECT 'events ' || COUNT(*) AS line FROM events e JOIN conversations v ON v.id = e.conversation_id WHERE e.kind = 'message'",
    ];
    for sql in queries {
        for row in sqlx::query(sql).fetch_all(&mut connection).await.unwrap() {
            seen.push(row.try_get::<String, _>("line").unwrap());
        }
    }
    seen
}

/// A batch of plain messages takes one statement per table; its rows must be
/// those the messages give written one at a time: duplicates in and across
/// batches, one contact and conversation per sender, the last name given, a
/// resolved conversation reopened, and WhatsApp/SMS twins linked to the
/// oldest contact, whether the twin came earlier in the batch or before it.
/// The batch is compared with its messages written one at a time in the
/// batch's own write order (by sender), where the results must be the same.
async fn batch_rows_match_one_at_a_time(batched_url: String, single_url: String) {
    let batched = Store::connect(&batched_url).await.unwrap();
    let single = Store::connect(&single_url).await.unwrap();
    let before = from(Channel::Whatsapp, "15550000009", "wamid.9", Some("Old"));
    for store in [&batched, &single] {
        store.ingest(&before.message).await.unwrap();
    }
    for url in [&batched_url, &single_url] {
        let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        sqlx::query("UPDATE conversations SET status = 'resolved'")
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let items = [
        from(Channel::Whatsapp, "15550000001", "wamid.1", None),
        from(Channel::Sms, "+15550000001", "SM1", None),
        from(Channel::Whatsapp, "15550000001", "wamid.2", Some("Ana")),
        from(Channel::Whatsapp, "15550000001", "wamid.1", None),
        from(Channel::Messenger, "psid-1", "m.1", Some("Bo")),
        from(Channel::Sms, "+15550000009", "SM9", None),
        from(Channel::Whatsapp, "15550000009", "wamid.9", None),
        from(Channel::Whatsapp, "15550000009", "wamid.10", None),
        from(Channel::Sms, "+15550000002", "SM2", Some("Cy")),
        from(Channel::Whatsapp, "15550000002", "wamid.20", None),
    ];
    let results = batched
        .ingest_batch(&items.iter().collect::<Vec<_>>())
        .await;
    // A batch is written in sender order (its lock order), so "oldest" within
    // one batch means first in that order.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&n| {
        (
            items[n].message.channel.as_str(),
            items[n].message.sender.clone(),
        )
    });
    let mut one_at_a_time: Vec<Option<Result<Ingested, frontdesk::store::StoreError>>> =
        (0..items.len()).map(|_| None).collect();
    for &n in &order {
        one_at_a_time[n] = Some(single.ingest(&items[n].message).await);
    }
    let one_at_a_time: Vec<_> = one_at_a_time.into_iter().flatten().collect();
    let kinds = |results: &[Result<Ingested, frontdesk::store::StoreError>]| -> Vec<String> {
        results
            .iter()
            .map(|r| match r {
                Ok(Ingested::New { .. }) => "new".to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(kinds(&results), kinds(&one_at_a_time));
    assert_eq!(
        kinds(&results),
        [
            "new",
            "new",
            "new",
            "Ok(Duplicate)",
            "new",
            "new",
            "Ok(Duplicate)",
            "new",
            "new",
            "new"
        ]
    );
    let rows = rows_of(&batched_url).await;
    assert_eq!(rows, rows_of(&single_url).await);
    for expected in [
        "sms +15550000001 - -> -",
        "whatsapp 15550000001 Ana -> sms +15550000001",
        "sms +15550000009 - -> whatsapp 15550000009",
        "whatsapp 15550000002 - -> sms +15550000002",
        "whatsapp 15550000009 106540352242922 open bot",
        "jobs 9",
    ] {
        assert!(
            rows.iter().any(|r| r == expected),
            "{expected:?} not in {rows:#?}"
        );
    }
}

#[tokio::test]
async fn batch_rows_match_one_at_a_time_on_sqlite() {
    let batched = crate::helpers::scratch("ingest-rows-batched");
    let single = crate::helpers::scratch("ingest-rows-single");
    batch_rows_match_one_at_a_time(Store::sqlite_url(&batched), Store::sqlite_url(&single)).await;
}

#[tokio::test]
async fn batch_rows_match_one_at_a_time_on_postgres() {
    let Some(batched) = crate::serve_helpers::postgres_database("rows_batched").await else {
        eprintln!("DATABASE_URL_TEST is not set: skipping the PostgreSQL batch rows test");
        return;
    };
    let single = crate::serve_helpers::postgres_database("rows_single")
        .await
        .unwrap();
    batch_rows_match_one_at_a_time(batched, single).await;
}
