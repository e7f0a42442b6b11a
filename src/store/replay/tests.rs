//! The replay table on both backends: a key is claimed once, racing replicas
//! get exactly one claim, old keys are pruned, a released key can be claimed
//! again. PostgreSQL runs when `DATABASE_URL_TEST` points at a server.
use super::*;

const KEEP_MS: i64 = 30 * 60 * 1000;

async fn sqlite(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("frontdesk-replay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Store::connect(&Store::sqlite_url(&dir)).await.unwrap()
}

/// A fresh database on the test server, or None (then the variant is skipped).
async fn postgres_url(name: &str) -> Option<String> {
    let admin = std::env::var("DATABASE_URL_TEST").ok()?;
    sqlx::any::install_default_drivers();
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("DATABASE_URL_TEST is reachable");
    let database = format!("frontdesk_replay_{name}_{}", std::process::id());
    let _ = connection
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database}"
        )))
        .await;
    connection
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .await
        .expect("can create a test database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    Some(format!("{base}/{database}"))
}

async fn claimed_once_then_refused(store: &Store) {
    let key = replay_key("mailgun", "1749416383", "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c");
    let now = 1_749_416_400_000;
    assert!(store.claim_replay_key(&key, now, KEEP_MS).await.unwrap());
    for later in [now, now + 1, now + KEEP_MS - 1] {
        assert!(!store.claim_replay_key(&key, later, KEEP_MS).await.unwrap());
    }
    // The same token with another timestamp, or another scope, is another pair.
    let other = replay_key("mailgun", "1749416384", "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c");
    assert!(store.claim_replay_key(&other, now, KEEP_MS).await.unwrap());
    assert_ne!(
        key,
        replay_key("other", "1749416383", "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c")
    );
    // Concatenation cannot make two pairs meet.
    assert_ne!(replay_key("m", "12", "3"), replay_key("m", "1", "23"));
}

async fn old_keys_are_pruned_and_released_keys_come_back(store: &Store) {
    let now = 1_749_416_400_000;
    let old = replay_key("mailgun", "1", "old");
    assert!(store.claim_replay_key(&old, now, KEEP_MS).await.unwrap());
    let fresh = replay_key("mailgun", "2", "fresh");
    assert!(store
        .claim_replay_key(&fresh, now + KEEP_MS + 1, KEEP_MS)
        .await
        .unwrap());
    assert_eq!(
        store.replay_keys().await.unwrap(),
        1,
        "the old key is pruned"
    );
    store.release_replay_key(&fresh).await.unwrap();
    assert!(store
        .claim_replay_key(&fresh, now + KEEP_MS + 2, KEEP_MS)
        .await
        .unwrap());
}

/// Many claims of one key at once, through different pools: one wins.
async fn racing_replicas_get_one_claim(replicas: Vec<Store>) {
    let key = replay_key("mailgun", "1749416383", "raced");
    let mut tasks = Vec::new();
    for n in 0..32 {
        let store = replicas[n % replicas.len()].clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_replay_key(&key, 1_749_416_400_000, KEEP_MS)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn a_signed_pair_is_claimed_once_on_sqlite() {
    let store = sqlite("once").await;
    claimed_once_then_refused(&store).await;
    old_keys_are_pruned_and_released_keys_come_back(&sqlite("prune").await).await;
    racing_replicas_get_one_claim(vec![sqlite("race").await]).await;
}

#[tokio::test]
async fn a_signed_pair_is_claimed_once_across_replicas_on_postgres() {
    let Some(url) = postgres_url("once").await else {
        eprintln!("DATABASE_URL_TEST not set: PostgreSQL variant skipped (CI sets it)");
        return;
    };
    let first = Store::connect(&url).await.unwrap();
    let second = Store::connect(&url).await.unwrap();
    claimed_once_then_refused(&first).await;
    let key = replay_key("mailgun", "1749416383", "5f1b4c9a0e2d8f7a6b3c1d0e9f8a7b6c");
    assert!(
        !second
            .claim_replay_key(&key, 1_749_416_400_001, KEEP_MS)
            .await
            .unwrap(),
        "another replica refuses the pair the first one took"
    );
    racing_replicas_get_one_claim(vec![first.clone(), second.clone()]).await;
    let pruned = postgres_url("prune").await.unwrap();
    old_keys_are_pruned_and_released_keys_come_back(&Store::connect(&pruned).await.unwrap()).await;
}
