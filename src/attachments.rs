//! Photos customers send: what is kept and how it is checked.
//!
//! At ingest ([`prepare`]) every attachment gets a random id and its marker in
//! the message text becomes `[attachment:ID]`; bytes that came with the
//! request (email parts, web chat uploads) are checked and written at once,
//! the others stay `pending`. The answer worker ([`settle_pending`]) fetches
//! those through `channels::media`, off the request path, before the
//! assistant reads the message; [`text_for_assistant`] then replaces the marker
//! of a photo that was not kept with [`PHOTO_NOT_RECEIVED`] and its reason, so
//! a form never takes a photo that is not there.
//!
//! A photo is kept only when its declared type is an image type we show
//! (JPEG, PNG, GIF, WebP, HEIC) and its first bytes say the same, and only up
//! to `[attachments] max_bytes`. Files go to `{data_dir}/attachments/{id}`,
//! written under a temporary name, synced, then renamed, so a crash never
//! leaves half a photo under a real id. Nothing here writes SQL.

use crate::channels::media::{self, MediaAuth};
use crate::channels::{AttachmentSource, InboundMessage};
use crate::http::AppState;
use crate::store::{Attachment, NewAttachment, Settled, StoreError};
use std::path::{Path, PathBuf};

/// The default `[attachments] max_bytes`: 10 MB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// What replaces the marker of a photo that was not kept, in the text the
/// assistant reads: `[photo not received: <reason>]`.
pub use crate::assistant::forms::PHOTO_NOT_RECEIVED;

/// The picture formats we keep and show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Gif,
    Webp,
    Heic,
}

impl ImageType {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
            ImageType::Gif => "image/gif",
            ImageType::Webp => "image/webp",
            ImageType::Heic => "image/heic",
        }
    }

    /// A declared content type (`image/jpeg; charset=…`, `image/jpg`), if it
    /// is one we keep.
    pub fn from_declared(content_type: &str) -> Option<ImageType> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(ImageType::Jpeg),
            "image/png" => Some(ImageType::Png),
            "image/gif" => Some(ImageType::Gif),
            "image/webp" => Some(ImageType::Webp),
            "image/heic" | "image/heif" | "image/heic-sequence" | "image/heif-sequence" => {
                Some(ImageType::Heic)
            }
            _ => None,
        }
    }

    /// What the first bytes of a file say it is.
    pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(ImageType::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(ImageType::Png);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some(ImageType::Gif);
        }
        if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            return Some(ImageType::Webp);
        }
        // ISO BMFF: a box size, `ftyp`, then a HEIF brand.
        if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
            let brand = &bytes[8..12];
            let heif: [&[u8]; 8] = [
                b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
            ];
            if heif.contains(&brand) {
                return Some(ImageType::Heic);
            }
        }
        None
    }
}

/// Checks a file against what it was declared to be: both must name the
/// same image type we keep. The error is what the owner reads.
pub fn check_image(declared: Option<&str>, bytes: &[u8]) -> Result<ImageType, String> {
    let declared_text = declared.unwrap_or("").trim();
    let Some(declared_type) = ImageType::from_declared(declared_text) else {
        let named = if declared_text.is_empty() {
            "no type".to_string()
        } else {
            declared_text.to_string()
        };
        return Err(format!(
            "it is not a photo we keep ({named}; JPEG, PNG, GIF, WebP or HEIC only)"
        ));
    };
    match ImageType::sniff(bytes) {
        Some(found) if found == declared_type => Ok(found),
        Some(found) => Err(format!(
            "the file says it is {} but its content is {}",
            declared_type.content_type(),
            found.content_type()
        )),
        None => Err(format!(
            "the file says it is {} but its content is not a picture",
            declared_type.content_type()
        )),
    }
}

/// Where a stored photo's bytes are.
pub fn path_of(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("attachments").join(id)
}

/// Ids are hex (they come from [`new_attachment_id`]); anything else is not
/// a file name we made.
pub fn is_attachment_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 128 random bits, hex.
pub fn new_attachment_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

/// Writes `bytes` under `id`: a temporary name, fsync, rename, fsync of the
/// folder. Blocking: run it off the async runtime.
pub fn write_file(data_dir: &Path, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let folder = data_dir.join("attachments");
    std::fs::create_dir_all(&folder)?;
    let temporary = folder.join(format!(".{id}.partial"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, folder.join(id))?;
    if let Ok(directory) = std::fs::File::open(&folder) {
        let _ = directory.sync_all();
    }
    Ok(())
}

/// Checks the bytes, writes them, and says how the attachment ended.
pub async fn keep(
    data_dir: &Path,
    id: &str,
    declared: Option<&str>,
    bytes: Vec<u8>,
    max_bytes: u64,
) -> Settled {
    if bytes.len() as u64 > max_bytes {
        return Settled::Failed {
            error: media::too_large(max_bytes),
        };
    }
    let found = match check_image(declared, &bytes) {
        Ok(found) => found,
        Err(error) => return Settled::Failed { error },
    };
    let (dir, name, size) = (data_dir.to_path_buf(), id.to_string(), bytes.len() as i64);
    let written = tokio::task::spawn_blocking(move || write_file(&dir, &name, &bytes)).await;
    match written {
        Ok(Ok(())) => Settled::Stored {
            content_type: found.content_type().to_string(),
            size,
        },
        Ok(Err(error)) => {
            tracing::error!(%error, id, "writing a photo failed");
            Settled::Failed {
                error: format!("it could not be saved on this server ({error})"),
            }
        }
        Err(error) => Settled::Failed {
            error: format!("it could not be saved on this server ({error})"),
        },
    }
}

/// The text with each attachment's marker replaced by `[attachment:ID]`, in
/// order (a marker not found is appended). `[attachment:` typed by the
/// customer is defused first, so only our own ids look like photos.
pub fn with_markers(text: &str, markers: &[(&str, &str)]) -> String {
    let mut text = text.replace("[attachment:", "[attachment ");
    let mut from = 0;
    for (marker, id) in markers {
        let replacement = format!("[attachment:{id}]");
        match text[from..].find(marker) {
            Some(offset) => {
                let at = from + offset;
                text.replace_range(at..at + marker.len(), &replacement);
                from = at + replacement.len();
            }
            None => {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&replacement);
                from = text.len();
            }
        }
    }
    text
}

/// Ids, markers and rows for a message's attachments; inline bytes are
/// checked and written now. Returns the message with its stored text.
pub async fn prepare(
    state: &AppState,
    message: &InboundMessage,
) -> (InboundMessage, Vec<NewAttachment>) {
    let max_bytes = state.settings.attachments.max_bytes;
    let mut rows = Vec::new();
    for attachment in &message.attachments {
        let id = new_attachment_id();
        let (kind, reference) = attachment.source.stored();
        let settled = match &attachment.source {
            AttachmentSource::Inline { bytes } => Some(
                keep(
                    &state.settings.data_dir,
                    &id,
                    attachment.content_type.as_deref(),
                    bytes.clone(),
                    max_bytes,
                )
                .await,
            ),
            _ => None,
        };
        rows.push(NewAttachment {
            id,
            source_kind: kind.to_string(),
            source_ref: reference.to_string(),
            declared_type: attachment.content_type.clone(),
            settled,
        });
    }
    let markers: Vec<(&str, &str)> = message
        .attachments
        .iter()
        .zip(&rows)
        .map(|(attachment, row)| (attachment.marker.as_str(), row.id.as_str()))
        .collect();
    let mut stored = message.clone();
    stored.text = with_markers(&message.text, &markers);
    // The bytes are on disk now; the row need not carry them.
    stored.attachments.clear();
    (stored, rows)
}

/// Removes the files [`prepare`] wrote for a message that turned out to be a
/// duplicate (its first copy keeps its own).
pub async fn discard(state: &AppState, rows: &[NewAttachment]) {
    for row in rows {
        if matches!(row.settled, Some(Settled::Stored { .. })) {
            let _ = std::fs::remove_file(path_of(&state.settings.data_dir, &row.id));
        }
    }
}

/// The credentials downloads need, from the settings.
pub fn media_auth(state: &AppState) -> MediaAuth {
    let settings = &state.settings;
    MediaAuth {
        graph_base_url: settings.graph_base_url.clone(),
        graph_api_version: settings.graph_api_version.clone(),
        whatsapp_token: settings
            .whatsapp
            .access_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        twilio_account_sid: settings.twilio.account_sid.clone(),
        twilio_auth_token: settings
            .twilio
            .auth_token
            .as_ref()
            .map(|t| t.expose().to_string()),
    }
}

/// Fetches, checks and stores a message's pending attachments (one retry
/// after a transient failure), and returns all of them as they ended.
pub async fn settle_pending(
    state: &AppState,
    client: &reqwest::Client,
    message_id: &str,
) -> Result<Vec<Attachment>, StoreError> {
    let attachments = state.store.message_attachments(message_id).await?;
    if attachments.iter().all(|a| a.status != "pending") {
        return Ok(attachments);
    }
    let auth = media_auth(state);
    let max_bytes = state.settings.attachments.max_bytes;
    for pending in attachments.iter().filter(|a| a.status == "pending") {
        let Some(source) = AttachmentSource::from_stored(&pending.source_kind, &pending.source_ref)
        else {
            let error = format!("unknown source `{}`", pending.source_kind);
            state
                .store
                .settle_attachment(&pending.id, &Settled::Failed { error })
                .await?;
            continue;
        };
        let started = std::time::Instant::now();
        let mut fetched = media::fetch(client, &auth, &source, max_bytes).await;
        // A quick transient failure (a reset, a 503) is tried once more; a
        // timeout is not, so the message is still answered within its lease.
        let quick = started.elapsed() < std::time::Duration::from_secs(3);
        if quick && matches!(&fetched, Err(error) if error.retryable) {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            fetched = media::fetch(client, &auth, &source, max_bytes).await;
        }
        let settled = match fetched {
            Ok(file) => {
                // The provider's declaration first; the download's header
                // where it declared nothing (Messenger).
                let declared = pending.declared_type.clone().or(file.content_type);
                keep(
                    &state.settings.data_dir,
                    &pending.id,
                    declared.as_deref(),
                    file.bytes,
                    max_bytes,
                )
                .await
            }
            Err(error) => Settled::Failed {
                error: error.message,
            },
        };
        if let Settled::Failed { error } = &settled {
            tracing::warn!(id = %pending.id, %error, "a photo was not kept");
        }
        let settled_now = state.store.settle_attachment(&pending.id, &settled).await?;
        // Erased (or expired) while it downloaded: its file must not outlive the row.
        if !settled_now
            && matches!(settled, Settled::Stored { .. })
            && state.store.attachment(&pending.id).await?.is_none()
        {
            let _ = std::fs::remove_file(path_of(&state.settings.data_dir, &pending.id));
        }
    }
    state.store.message_attachments(message_id).await
}

/// The text the assistant reads: markers of photos that were not kept become
/// `[photo not received: <reason>]`, so a photo field asks again.
pub fn text_for_assistant(text: &str, attachments: &[Attachment]) -> String {
    let mut text = text.to_string();
    for attachment in attachments.iter().filter(|a| !a.is_stored()) {
        let reason = attachment
            .error
            .as_deref()
            .unwrap_or("it could not be fetched");
        text = text.replace(
            &format!("[attachment:{}]", attachment.id),
            &format!("{PHOTO_NOT_RECEIVED}{reason}]"),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_name_each_kept_format() {
        assert_eq!(
            ImageType::sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"),
            Some(ImageType::Jpeg)
        );
        assert_eq!(
            ImageType::sniff(b"\x89PNG\r\n\x1a\n\0\0"),
            Some(ImageType::Png)
        );
        assert_eq!(ImageType::sniff(b"GIF89a\x01\0"), Some(ImageType::Gif));
        assert_eq!(
            ImageType::sniff(b"RIFF\x24\0\0\0WEBPVP8 "),
            Some(ImageType::Webp)
        );
        assert_eq!(
            ImageType::sniff(b"\0\0\0\x18ftypheic\0\0"),
            Some(ImageType::Heic)
        );
        assert_eq!(
            ImageType::sniff(b"\0\0\0\x18ftypmp42\0\0"),
            None,
            "an MP4 video"
        );
        assert_eq!(ImageType::sniff(b"%PDF-1.7"), None);
        assert_eq!(ImageType::sniff(b""), None);
    }

    #[test]
    fn the_declared_type_and_the_content_must_agree() {
        let png = b"\x89PNG\r\n\x1a\n\0\0";
        assert_eq!(check_image(Some("image/png"), png), Ok(ImageType::Png));
        assert_eq!(check_image(Some("IMAGE/PNG; q=1"), png), Ok(ImageType::Png));
        let mismatch = check_image(Some("image/jpeg"), png).unwrap_err();
        assert!(mismatch.contains("its content is image/png"), "{mismatch}");
        let pdf = check_image(Some("image/jpeg"), b"%PDF-1.7").unwrap_err();
        assert!(pdf.contains("not a picture"), "{pdf}");
        let declared_pdf = check_image(Some("application/pdf"), b"%PDF-1.7").unwrap_err();
        assert!(declared_pdf.contains("application/pdf"), "{declared_pdf}");
        assert!(check_image(None, png).is_err(), "no declared type");
        assert!(
            check_image(Some("image/svg+xml"), b"<svg").is_err(),
            "SVG can carry script"
        );
    }

    #[tokio::test]
    async fn files_over_the_cap_are_refused_and_others_written_whole() {
        let dir = std::env::temp_dir().join(format!("frontdesk-keep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let png = b"\x89PNG\r\n\x1a\nrest-of-the-file".to_vec();
        let id = new_attachment_id();
        let refused = keep(&dir, &id, Some("image/png"), png.clone(), 10).await;
        assert_eq!(
            refused,
            Settled::Failed {
                error: "the photo is larger than the 10 bytes limit, so it was not kept".into()
            }
        );
        assert!(!path_of(&dir, &id).exists());
        let kept = keep(&dir, &id, Some("image/png"), png.clone(), 1024).await;
        assert_eq!(
            kept,
            Settled::Stored {
                content_type: "image/png".into(),
                size: png.len() as i64
            }
        );
        assert_eq!(std::fs::read(path_of(&dir, &id)).unwrap(), png);
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("attachments"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn markers_become_ids_in_order_and_typed_ones_are_defused() {
        assert_eq!(
            with_markers("[image] like this", &[("[image]", "a1")]),
            "[attachment:a1] like this"
        );
        assert_eq!(
            with_markers(
                "two [image] [image]",
                &[("[image]", "a1"), ("[image]", "b2")]
            ),
            "two [attachment:a1] [attachment:b2]"
        );
        assert_eq!(with_markers("", &[("[image]", "a1")]), "[attachment:a1]");
        assert_eq!(
            with_markers("see [attachment:stolen] [image]", &[("[image]", "a1")]),
            "see [attachment stolen] [attachment:a1]"
        );
        assert!(is_attachment_id(&new_attachment_id()));
        assert!(!is_attachment_id("../frontdesk.db"));
    }

    #[test]
    fn photos_not_kept_reach_the_assistant_as_not_received() {
        let failed = Attachment {
            id: "f1".into(),
            message_id: "m".into(),
            conversation_id: "c".into(),
            source_kind: "whatsapp_media".into(),
            source_ref: "1".into(),
            declared_type: Some("image/jpeg".into()),
            content_type: Some("image/jpeg".into()),
            size: None,
            status: "failed".into(),
            error: Some("it is too big".into()),
            created_ms: 0,
        };
        let stored = Attachment {
            id: "s1".into(),
            status: "stored".into(),
            error: None,
            ..failed.clone()
        };
        assert_eq!(
            text_for_assistant("[attachment:f1] [attachment:s1] cake", &[failed, stored]),
            "[photo not received: it is too big] [attachment:s1] cake"
        );
    }
}
