//! The real `frontdesk serve` as a child process (for the crash and shutdown
//! tests): starting it on SQLite or PostgreSQL, a load of signed WhatsApp
//! webhooks posted like a provider does (each retried until acknowledged), and
//! the count of what became of every acknowledged message.

use crate::serve_helpers::*;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where the store lives: SQLite in the data dir, or a PostgreSQL database.
#[derive(Clone)]
pub struct Target {
    pub data: std::path::PathBuf,
    pub database_url: Option<String>,
}

impl Target {
    pub fn label(&self) -> &'static str {
        if self.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    pub async fn store(&self) -> frontdesk::store::Store {
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => frontdesk::store::Store::sqlite_url(&self.data),
        };
        frontdesk::store::Store::connect(&url).await.unwrap()
    }
}

/// Starts `frontdesk serve` and returns it with the port it reports.
pub fn start_server(target: &Target, fake_base: &str, port: u16) -> (Child, u16) {
    start_server_with(target, fake_base, port, &[])
}

/// [`start_server`] with extra environment (limits, for the flood test).
pub fn start_server_with(
    target: &Target,
    fake_base: &str,
    port: u16,
    extra_env: &[(&str, &str)],
) -> (Child, u16) {
    let repo = crate::helpers::repo();
    let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    command
        .current_dir(&repo)
        .arg("serve")
        .env("FRONTDESK_LISTEN", format!("127.0.0.1:{port}"))
        .env("FRONTDESK_DATA_DIR", &target.data)
        .env("FRONTDESK_KNOWLEDGE", repo.join("knowledge"))
        .env("FRONTDESK_GRAPH_BASE_URL", fake_base)
        .env("FRONTDESK_WHATSAPP_APP_SECRET", APP_SECRET)
        .env("FRONTDESK_WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN)
        .env("FRONTDESK_WORKERS", "2")
        .env("FRONTDESK_LOG", "warn")
        .env_remove("FRONTDESK_STORE_DURABILITY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match &target.database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("frontdesk serve starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("frontdesk listening on http://") {
                let _ = tx.send(
                    address
                        .rsplit(':')
                        .next()
                        .unwrap_or("0")
                        .parse::<u16>()
                        .unwrap_or(0),
                );
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve reports its port");
    (child, port)
}

/// Senders posting `messages` distinct webhooks over `lanes` connections,
/// each retried (50 ms apart) until it is answered 200, as providers do.
pub struct Load {
    pub acknowledged: Arc<AtomicUsize>,
    /// Requests sent and not yet answered: above zero at a kill means the
    /// kill landed while messages waited on a group commit.
    pub in_flight: Arc<AtomicUsize>,
    /// Answers other than 200 (503 while a store is down, refused connections).
    pub refused: Arc<AtomicUsize>,
    /// Of those, 503 answers: the server could not commit and said so.
    pub unavailable: Arc<AtomicUsize>,
    pub senders: Vec<tokio::task::JoinHandle<()>>,
}

pub fn customer(n: usize) -> String {
    format!("1999{n:07}")
}

impl Load {
    pub fn start(port: u16, messages: usize, lanes: usize) -> Load {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}/webhooks/whatsapp");
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let unavailable = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for lane in 0..lanes {
            let (client, base) = (client.clone(), base.clone());
            let (acknowledged, in_flight, refused, unavailable) = (
                acknowledged.clone(),
                in_flight.clone(),
                refused.clone(),
                unavailable.clone(),
            );
            senders.push(tokio::spawn(async move {
                for n in (lane..messages).step_by(lanes) {
                    let body = whatsapp_payload(
                        &customer(n),
                        &format!("wamid.crash.{n}"),
                        "what time do you open on saturday?",
                    );
                    let signature = sign(&body);
                    loop {
                        in_flight.fetch_add(1, Ordering::SeqCst);
                        let sent = client
                            .post(&base)
                            .header("content-type", "application/json")
                            .header("X-Hub-Signature-256", &signature)
                            .body(body.clone())
                            .send()
                            .await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        if matches!(&sent, Ok(response) if response.status() == 200) {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        refused.fetch_add(1, Ordering::SeqCst);
                        if matches!(&sent, Ok(response) if response.status() == 503) {
                            unavailable.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }));
        }
        Load {
            acknowledged,
            in_flight,
            refused,
            unavailable,
            senders,
        }
    }

    pub fn acknowledged(&self) -> usize {
        self.acknowledged.load(Ordering::SeqCst)
    }

    /// Waits until `count` messages are acknowledged.
    pub async fn until_acknowledged(&self, count: usize) {
        while self.acknowledged() < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn finish(self) {
        for sender in self.senders {
            sender.await.unwrap();
        }
    }
}

/// What became of every acknowledged message.
#[derive(Debug)]
pub struct Outcome {
    pub stored: usize,
    /// Customers the fake provider got a reply for.
    pub answered: usize,
    /// Interrupted sends handed to a person (`delivery_unknown`).
    pub handed_over: usize,
    /// Of those, the ones whose reply never reached the provider: the
    /// customer waits for a person.
    pub handed_over_unsent: usize,
    /// Neither answered nor handed to a person.
    pub lost: usize,
    /// Extra replies to one customer.
    pub duplicates: usize,
}

/// Waits for every job to be done and the outbox drained (sent or settled),
/// as long as the answers keep coming: it gives up after `seconds` without
/// progress (a long run answers for minutes), then counts.
pub async fn settle_and_count(
    target: &Target,
    fake: &FakeProviders,
    messages: usize,
    seconds: u64,
) -> Outcome {
    let store = target.store().await;
    let mut last = (-1, -1, -1);
    let mut deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let (jobs, outbox, _) = store.depths().await.unwrap();
        let out = store.count_messages("out").await.unwrap();
        if jobs == 0 && outbox == 0 && out as usize >= messages {
            break;
        }
        if (jobs, outbox, out) != last {
            last = (jobs, outbox, out);
            deadline = Instant::now() + Duration::from_secs(seconds);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A reply sent just before the count is recorded after it; let it land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    count(&store, fake, messages).await
}

pub async fn count(
    store: &frontdesk::store::Store,
    fake: &FakeProviders,
    messages: usize,
) -> Outcome {
    let mut per_customer: HashMap<String, usize> = HashMap::new();
    for sent in fake.sends() {
        *per_customer.entry(sent.to).or_insert(0) += 1;
    }
    let handed: HashSet<String> = store
        .open_queue()
        .await
        .unwrap()
        .into_iter()
        .filter(|item| item.reason == "delivery_unknown")
        .map(|item| item.customer)
        .collect();
    let mut lost = 0;
    let mut handed_over_unsent = 0;
    for n in 0..messages {
        let who = customer(n);
        match (per_customer.contains_key(&who), handed.contains(&who)) {
            (true, _) => {}
            (false, true) => handed_over_unsent += 1,
            (false, false) => lost += 1,
        }
    }
    Outcome {
        stored: store.count_messages("in").await.unwrap() as usize,
        answered: per_customer.len(),
        handed_over: handed.len(),
        handed_over_unsent,
        lost,
        duplicates: per_customer.values().map(|n| n - 1).sum(),
    }
}
