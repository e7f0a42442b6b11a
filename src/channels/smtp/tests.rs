use super::*;
use crate::channels::email::{build_email, message_id_for};
use crate::channels::OutboundMessage;
use crate::domain::Channel;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What the fake server does with one connection.
#[derive(Debug, Clone, Copy)]
enum Session {
    /// Answers every step (RCPT TO with this line).
    Answer(&'static str),
    /// Closes the connection when MAIL FROM arrives.
    DropAtMail,
    /// Reads the whole message through the `.` line, then closes without a 250.
    DropAfterData,
    /// Reads the whole message, then never answers.
    HangAfterData,
    /// Accepts the connection and never greets.
    Silent,
}

/// A minimal SMTP server: one session per connection, in order (the last
/// one repeats). Keeps every message it read through the final `.`.
async fn fake_smtp(sessions: &[Session]) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    let sessions = sessions.to_vec();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let session = sessions[n.min(sessions.len() - 1)];
            tokio::spawn(serve(socket, session, kept.clone()));
        }
    });
    (port, received)
}

async fn serve(socket: tokio::net::TcpStream, session: Session, kept: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = socket.into_split();
    if let Session::Silent = session {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 fake.example ESMTP\r\n").await;
    let mut data: Option<String> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(message) = data.as_mut() {
            if line != "." {
                message.push_str(&line);
                message.push_str("\r\n");
                continue;
            }
            kept.lock().unwrap().push(data.take().unwrap());
            match session {
                Session::DropAfterData => return,
                Session::HangAfterData => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                _ => {
                    let _ = write.write_all(b"250 2.0.0 Ok: queued as 4BXM1\r\n").await;
                    continue;
                }
            }
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: &[u8] = match (verb.as_str(), session) {
            ("MAIL", Session::DropAtMail) => return,
            ("EHLO" | "HELO", _) => b"250-fake.example\r\n250 8BITMIME\r\n",
            ("MAIL" | "RSET" | "NOOP", _) => b"250 2.1.0 Ok\r\n",
            ("RCPT", Session::Answer(reply)) => reply.as_bytes(),
            ("RCPT", _) => b"250 2.1.5 Ok\r\n",
            ("DATA", _) => {
                data = Some(String::new());
                b"354 End data with <CR><LF>.<CR><LF>\r\n"
            }
            ("QUIT", _) => {
                let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
                return;
            }
            _ => b"502 5.5.2 Error: command not recognized\r\n",
        };
        let _ = write.write_all(answer).await;
    }
}

fn server(port: u16, timeout: Duration) -> SmtpServer {
    SmtpServer::from_url(&format!("smtp://127.0.0.1:{port}"), timeout).unwrap()
}

fn reply(in_reply_to: Option<&str>) -> lettre::Message {
    let outbound = OutboundMessage {
        channel: Channel::Email,
        to: "ann.lee@example.com".into(),
        business_account: "hello@rosas.example".into(),
        text: "Yes, we can write \"Happy 7th Mia\" on it.".into(),
        idempotency_key: "reply-31".into(),
        subject: Some("Re: Birthday cake order".into()),
        in_reply_to: in_reply_to.map(str::to_string),
        template: None,
        tag: None,
        outbox_id: None,
    };
    build_email("hello@rosas.example", &outbound).unwrap()
}

const OK: Session = Session::Answer("250 2.1.5 Ok\r\n");

#[tokio::test]
async fn a_send_is_delivered_and_returns_the_message_id() {
    let (port, received) = fake_smtp(&[OK]).await;
    let email = reply(Some("<CAEz7B1p9x=Qh@mail.gmail.com>"));
    let id = send(&server(port, Duration::from_secs(5)), email)
        .await
        .unwrap();
    assert_eq!(id, message_id_for("reply-31", "rosas.example"));
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].contains(&format!("Message-ID: {id}")),
        "{received:?}"
    );
    assert!(
        received[0].contains("In-Reply-To: <CAEz7B1p9x=Qh@mail.gmail.com>"),
        "{received:?}"
    );
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retryable() {
    let (port, _) = fake_smtp(&[Session::Answer(
        "550 5.1.1 <ann.lee@example.com>: Recipient address rejected: User unknown\r\n",
    )])
    .await;
    let error = send(&server(port, Duration::from_secs(5)), reply(None))
        .await
        .unwrap_err();
    assert!(!error.retryable && !error.ambiguous, "{error}");
}

#[tokio::test]
async fn a_transient_refusal_or_no_server_is_retryable() {
    let (port, _) = fake_smtp(&[Session::Answer(
        "451 4.7.1 Greylisted, please try again later\r\n",
    )])
    .await;
    let error = send(&server(port, Duration::from_secs(5)), reply(None))
        .await
        .unwrap_err();
    assert!(error.retryable && !error.ambiguous, "{error}");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = send(&server(closed, Duration::from_secs(5)), reply(None))
        .await
        .unwrap_err();
    assert!(error.retryable && !error.ambiguous, "{error}");
}

#[tokio::test]
async fn a_connection_lost_before_the_message_is_retryable() {
    let (port, received) = fake_smtp(&[Session::DropAtMail]).await;
    let error = send(&server(port, Duration::from_secs(5)), reply(None))
        .await
        .unwrap_err();
    assert!(error.retryable && !error.ambiguous, "{error}");
    assert!(received.lock().unwrap().is_empty());

    // A server that never greets: the deadline, still before the message.
    let (port, _) = fake_smtp(&[Session::Silent]).await;
    let error = send(&server(port, Duration::from_millis(300)), reply(None))
        .await
        .unwrap_err();
    assert!(error.retryable && !error.ambiguous, "{error}");
}

#[tokio::test]
async fn a_connection_lost_after_the_whole_message_is_ambiguous() {
    let (port, received) = fake_smtp(&[Session::DropAfterData]).await;
    let error = send(&server(port, Duration::from_secs(5)), reply(None))
        .await
        .unwrap_err();
    assert!(error.ambiguous, "{error}");
    assert_eq!(received.lock().unwrap().len(), 1);

    let (port, received) = fake_smtp(&[Session::HangAfterData]).await;
    let error = send(&server(port, Duration::from_millis(500)), reply(None))
        .await
        .unwrap_err();
    assert!(error.ambiguous, "{error}");
    assert!(error.message.contains("no answer within 500 ms"), "{error}");
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[test]
fn the_url_gives_the_server_its_security_and_credentials() {
    let timeout = Duration::from_secs(30);
    let plain = SmtpServer::from_url("smtp://mail.example", timeout).unwrap();
    assert_eq!((plain.host.as_str(), plain.port), ("mail.example", 25));
    assert!(matches!(plain.tls, Tls::None) && plain.credentials.is_none());

    let submission = SmtpServer::from_url(
        "smtp://rosa%40rosas.example:p%40ss%2Fword@mail.example/rosas.example?tls=required",
        timeout,
    )
    .unwrap();
    assert_eq!(submission.port, 587);
    assert!(matches!(submission.tls, Tls::Required(_)));
    assert_eq!(
        submission.credentials,
        Some(Credentials::new(
            "rosa@rosas.example".into(),
            "p@ss/word".into()
        ))
    );
    assert_eq!(
        submission.hello_name,
        ClientId::Domain("rosas.example".into())
    );
    // The password never reaches a log line.
    assert!(!format!("{submission:?}").contains("p@ss"));

    let wrapped = SmtpServer::from_url("smtps://user:pw@mail.example:2465", timeout).unwrap();
    assert_eq!(wrapped.port, 2465);
    assert!(matches!(wrapped.tls, Tls::Wrapper(_)));
    let opportunistic =
        SmtpServer::from_url("smtp://mail.example?tls=opportunistic", timeout).unwrap();
    assert!(matches!(opportunistic.tls, Tls::Opportunistic(_)));

    for bad in [
        "http://mail.example",
        "smtp://mail.example?tls=maybe",
        "not a url",
    ] {
        let error = SmtpServer::from_url(bad, timeout).unwrap_err();
        assert!(
            !error.retryable && error.message.contains("SMTP URL"),
            "{bad}: {error}"
        );
    }
}
