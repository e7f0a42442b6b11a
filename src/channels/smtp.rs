//! Sending a reply over SMTP, knowing how far the dialogue got.
//!
//! An SMTP server takes a message only once it has read the whole of DATA,
//! through the lone `.` line. So a failure before we start writing the
//! message (connecting, TLS, EHLO, AUTH, MAIL FROM, RCPT TO, the DATA command)
//! cannot have delivered anything and is safe to retry; once the message is
//! on the wire, a lost connection or a timeout may have come after the server
//! queued it and before its 250 reached us, so that failure is ambiguous and
//! never retried blindly (see `delivery`). lettre's transport reports both the
//! same way, so the dialogue is driven here step by step over lettre's
//! connection, with one deadline for the whole of it.
//!
//! The server comes from the settings' URL, read as lettre reads it:
//! `smtp://host:port` (plain), `smtp://…?tls=required` or `?tls=opportunistic`
//! (STARTTLS), `smtps://…` (TLS from the start); `user:password@` for AUTH
//! (PLAIN or LOGIN), a path for the EHLO name.

use super::SendError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use std::time::Duration;
use tokio::time::Instant;

/// Where replies are sent from, and how.
#[derive(Clone)]
pub struct SmtpServer {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello_name: ClientId,
    /// For the whole dialogue, connection to QUIT.
    timeout: Duration,
}

impl std::fmt::Debug for SmtpServer {
    /// Never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("authenticated", &self.credentials.is_some())
            .finish()
    }
}

impl SmtpServer {
    /// Reads an SMTP URL (see the module docs); an unreadable one is a
    /// permanent error (every send would fail the same way).
    pub fn from_url(url: &str, timeout: Duration) -> Result<SmtpServer, SendError> {
        let invalid = |why: &str| SendError::permanent(format!("SMTP URL: {why}"));
        let parsed = reqwest::Url::parse(url).map_err(|err| invalid(&err.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls_query = parsed
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let parameters =
            || TlsParameters::new(host.clone()).map_err(|err| invalid(&format!("TLS: {err}")));
        let (tls, default_port) = match (parsed.scheme(), tls_query.as_deref()) {
            ("smtp", None) => (Tls::None, 25),
            ("smtp", Some("required")) => (Tls::Required(parameters()?), 587),
            ("smtp", Some("opportunistic")) => (Tls::Opportunistic(parameters()?), 587),
            ("smtps", _) => (Tls::Wrapper(parameters()?), 465),
            (scheme, tls) => {
                return Err(invalid(&format!(
                    "unknown scheme `{scheme}` or tls parameter {tls:?}"
                )))
            }
        };
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|err| invalid(&err.to_string()))
        };
        let credentials = match parsed.password() {
            Some(password) => Some(Credentials::new(
                decode(parsed.username())?,
                decode(password)?,
            )),
            None => None,
        };
        let name = parsed.path().trim_matches('/');
        let hello_name = if name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(name.to_string())
        };
        Ok(SmtpServer {
            port: parsed.port().unwrap_or(default_port),
            host,
            tls,
            credentials,
            hello_name,
            timeout,
        })
    }
}

/// How far a failed dialogue got, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing of the message written: the server cannot have it.
    BeforeMessage,
    /// The message was being written or its answer awaited.
    MessageWritten,
}

/// Sends a built email and returns its Message-ID. A 5xx refusal at any step
/// is permanent; a 4xx is retryable (the server declined the message, even
/// after DATA); any other failure (refused or lost connection, TLS, a
/// timeout, a garbled answer) is retryable before the message is written
/// and ambiguous from then on.
pub async fn send(server: &SmtpServer, message: lettre::Message) -> Result<String, SendError> {
    let message_id = message
        .headers()
        .get_raw("Message-ID")
        .unwrap_or_default()
        .to_string();
    let deadline = Instant::now() + server.timeout;
    let mut stage = Stage::BeforeMessage;
    let failure =
        match tokio::time::timeout_at(deadline, dialogue(server, &message, &mut stage)).await {
            Ok(Ok(())) => return Ok(message_id),
            Ok(Err(failure)) => failure,
            Err(_) => Failure {
                what: format!("no answer within {} ms", server.timeout.as_millis()),
                refused: None,
            },
        };
    let message = format!("email: SMTP send failed: {}", failure.what);
    Err(match (failure.refused, stage) {
        (Some(Refusal::Permanent), _) => SendError::permanent(message),
        (Some(Refusal::Transient), _) | (None, Stage::BeforeMessage) => {
            SendError::new(true, message)
        }
        (None, Stage::MessageWritten) => SendError::ambiguous(message),
    })
}

/// A refusal: by the server (its 5xx or 4xx) or by us before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A 5xx, or a message this server cannot take (lettre's client errors).
    Permanent,
    /// A 4xx: greylisting, a busy mailbox.
    Transient,
}

/// Why a dialogue stopped; `refused` is `None` when it was no answer at all
/// (a lost connection, a TLS failure, a garbled line).
struct Failure {
    what: String,
    refused: Option<Refusal>,
}

impl From<lettre::transport::smtp::Error> for Failure {
    fn from(error: lettre::transport::smtp::Error) -> Failure {
        let refused = if error.is_permanent() || error.is_client() {
            Some(Refusal::Permanent)
        } else if error.is_transient() {
            Some(Refusal::Transient)
        } else {
            None
        };
        Failure {
            what: error.to_string(),
            refused,
        }
    }
}

fn cannot_send(why: &str) -> Failure {
    Failure {
        what: why.to_string(),
        refused: Some(Refusal::Permanent),
    }
}

/// Connect, MAIL FROM, RCPT TO, DATA, the message, QUIT: `stage` says how
/// far it got when it fails.
async fn dialogue(
    server: &SmtpServer,
    message: &lettre::Message,
    stage: &mut Stage,
) -> Result<(), Failure> {
    let envelope = message.envelope();
    let body = message.formatted();
    let mut connection = connect(server).await?;
    let mut options = Vec::new();
    let ascii = |address: &lettre::Address| AsRef::<str>::as_ref(address).is_ascii();
    let addresses_ascii = envelope.from().is_none_or(ascii) && envelope.to().iter().all(ascii);
    if !addresses_ascii {
        if !connection
            .server_info()
            .supports_feature(Extension::SmtpUtfEight)
        {
            return Err(cannot_send(
                "an address is not ASCII and the server has no SMTPUTF8",
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        if !connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            return Err(cannot_send(
                "the message is not ASCII and the server has no 8BITMIME",
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    connection
        .command(Mail::new(envelope.from().cloned(), options))
        .await?;
    for to in envelope.to() {
        connection
            .command(Rcpt::new(to.clone(), Vec::new()))
            .await?;
    }
    connection.command(Data).await?;
    // From the first byte of the message on, the server may end up with it.
    *stage = Stage::MessageWritten;
    connection.message(&body).await?;
    // Taken: a QUIT that goes wrong changes nothing.
    let _ = connection.quit().await;
    Ok(())
}

async fn connect(
    server: &SmtpServer,
) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
    let wrapped = match &server.tls {
        Tls::Wrapper(parameters) => Some(parameters.clone()),
        _ => None,
    };
    let mut connection = AsyncSmtpConnection::connect_tokio1(
        (server.host.as_str(), server.port),
        Some(server.timeout),
        &server.hello_name,
        wrapped,
        None,
    )
    .await?;
    match &server.tls {
        Tls::Opportunistic(parameters) if connection.can_starttls() => {
            connection
                .starttls(parameters.clone(), &server.hello_name)
                .await?
        }
        Tls::Required(parameters) => {
            connection
                .starttls(parameters.clone(), &server.hello_name)
                .await?
        }
        _ => {}
    }
    if let Some(credentials) = &server.credentials {
        connection.auth(DEFAULT_MECHANISMS, credentials).await?;
    }
    Ok(connection)
}

#[cfg(test)]
mod tests;
