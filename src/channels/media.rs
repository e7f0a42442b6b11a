//! Fetching the pictures customers send, the way each provider serves them:
//! a WhatsApp media id resolves through the Graph API to a URL, and both calls
//! carry the bearer token; Messenger/Instagram URLs are signed and need no
//! auth; Twilio `MediaUrlN` needs HTTP basic auth (account SID : auth token)
//! and redirects to the file (reqwest drops the credentials when the redirect
//! leaves Twilio's host).
//!
//! Every download is capped while it streams: a body over `max_bytes` is cut
//! off and refused, whatever `Content-Length` claimed. Errors are plain words
//! for the owner, marked retryable only where trying again can help.
//! Nothing here checks what the bytes are or writes them anywhere: that is
//! `crate::attachments`' job.

use super::{excerpt, retryable_status, AttachmentSource};
use std::time::Duration;

/// How long one request of a download may take in all (WhatsApp makes two),
/// kept well inside the answer worker's lease.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(12);

/// What a provider needs from the settings to hand over a file.
#[derive(Clone, Default)]
pub struct MediaAuth {
    pub graph_base_url: String,
    pub graph_api_version: String,
    /// WhatsApp's access token (bearer), for media ids.
    pub whatsapp_token: Option<String>,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
}

/// A downloaded file: its bytes and the `Content-Type` the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// Why a download failed, in words the owner can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MediaError {
    /// A timeout, a reset, a 5xx or 429: the same request may work later.
    pub retryable: bool,
    pub message: String,
}

impl MediaError {
    fn permanent(message: impl Into<String>) -> Self {
        MediaError {
            retryable: false,
            message: message.into(),
        }
    }
}

/// An HTTP client for downloads: connect and total timeouts, redirects
/// followed (Twilio's media URLs redirect to the file).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
}

/// "10 MB", "1.5 MB", "900 bytes": a size limit as the owner reads it.
pub fn describe_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes < 1024 * 1024 {
        return format!("{bytes} bytes");
    }
    let megabytes = bytes as f64 / MB;
    if (megabytes - megabytes.round()).abs() < 0.05 {
        format!("{} MB", megabytes.round())
    } else {
        format!("{megabytes:.1} MB")
    }
}

/// The plain-words refusal of a file over the cap.
pub fn too_large(max_bytes: u64) -> String {
    format!(
        "the photo is larger than the {} limit, so it was not kept",
        describe_size(max_bytes)
    )
}

/// Downloads the file `source` points at, at most `max_bytes` of it.
/// Inline sources have nothing to fetch (their bytes came with the request).
pub async fn fetch(
    client: &reqwest::Client,
    auth: &MediaAuth,
    source: &AttachmentSource,
    max_bytes: u64,
) -> Result<Fetched, MediaError> {
    match source {
        AttachmentSource::WhatsappMedia { media_id } => {
            let token = auth.whatsapp_token.as_deref().ok_or_else(|| {
                MediaError::permanent("WhatsApp's access token is not configured")
            })?;
            let info_url = format!(
                "{}/{}/{}",
                auth.graph_base_url.trim_end_matches('/'),
                auth.graph_api_version,
                media_id
            );
            let info = get("WhatsApp", client.get(&info_url).bearer_auth(token)).await?;
            let info = read_capped("WhatsApp", info, 64 * 1024).await?;
            let url = serde_json::from_slice::<serde_json::Value>(&info.bytes)
                .ok()
                .and_then(|value| value["url"].as_str().map(str::to_string))
                .ok_or_else(|| {
                    MediaError::permanent(format!(
                        "WhatsApp's media answer has no url: {}",
                        excerpt(&String::from_utf8_lossy(&info.bytes))
                    ))
                })?;
            let file = get("WhatsApp", client.get(url).bearer_auth(token)).await?;
            read_capped("WhatsApp", file, max_bytes).await
        }
        AttachmentSource::MetaUrl { url } => {
            let file = get("Messenger", client.get(url)).await?;
            read_capped("Messenger", file, max_bytes).await
        }
        AttachmentSource::TwilioUrl { url } => {
            let (Some(sid), Some(token)) = (
                auth.twilio_account_sid.as_deref(),
                auth.twilio_auth_token.as_deref(),
            ) else {
                return Err(MediaError::permanent(
                    "Twilio's account SID and auth token are not configured",
                ));
            };
            let file = get("Twilio", client.get(url).basic_auth(sid, Some(token))).await?;
            read_capped("Twilio", file, max_bytes).await
        }
        AttachmentSource::Inline { bytes } => Ok(Fetched {
            bytes: bytes.clone(),
            content_type: None,
        }),
    }
}

/// Sends a GET and keeps a 2xx answer; anything else is a [`MediaError`].
async fn get(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, MediaError> {
    let response = request.send().await.map_err(|err| MediaError {
        retryable: !err.is_builder(),
        message: format!("{provider}: the download failed: {err}"),
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(MediaError {
        retryable: retryable_status(status),
        message: format!(
            "{provider} refused the download (HTTP {}): {}",
            status.as_u16(),
            excerpt(&body)
        ),
    })
}

/// Reads a body, refusing it as soon as it is known to exceed `max_bytes`
/// (from `Content-Length` before reading, else while it streams).
pub async fn read_capped(
    provider: &str,
    mut response: reqwest::Response,
    max_bytes: u64,
) -> Result<Fetched, MediaError> {
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes)
    {
        return Err(MediaError::permanent(too_large(max_bytes)));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
                    return Err(MediaError::permanent(too_large(max_bytes)));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => {
                return Err(MediaError {
                    retryable: true,
                    message: format!("{provider}: the download broke off: {err}"),
                })
            }
        }
    }
    Ok(Fetched {
        bytes,
        content_type,
    })
}

#[cfg(test)]
mod tests;
