//! One person's export: a zip holding `contact.json` (every stored row about
//! them, FORMAT below) and `attachments/<id>.<ext>`, the photos they sent.
//! Built in memory off the async runtime; nothing of anybody else goes in,
//! because everything comes from one `Store::person_data`.

use super::PrivacyError;
use crate::store::PersonData;
use std::io::Write;
use std::path::Path;

/// `format` in `contact.json`, with `version`: tools reading exports check both.
pub const FORMAT: &str = "frontdesk-contact-export";
pub const VERSION: u32 = 1;

/// A finished export.
#[derive(Debug, Clone)]
pub struct Export {
    /// The zip's bytes.
    pub zip: Vec<u8>,
    pub contacts: usize,
    pub conversations: usize,
    pub messages: usize,
    /// Photo files included (a photo that was not kept has no file).
    pub photos: usize,
}

/// The file name a photo gets inside the zip, by its checked type.
pub fn photo_file_name(id: &str, content_type: Option<&str>) -> String {
    let extension = match content_type.unwrap_or("") {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/heic" => "heic",
        _ => "bin",
    };
    format!("attachments/{id}.{extension}")
}

/// Builds the zip (blocking: reads the photo files).
pub fn build(
    person: &PersonData,
    requested_id: &str,
    data_dir: &Path,
    now_ms: i64,
) -> Result<Export, PrivacyError> {
    let zip_error = |e: zip::result::ZipError| PrivacyError::Zip(e.to_string());
    let mut document = serde_json::json!({
        "format": FORMAT,
        "version": VERSION,
        "exported_ms": now_ms,
        "contact_id": requested_id,
        "contacts": person.contacts,
        "conversations": person.conversations,
    });
    let mut photos = Vec::new();
    for (c, conversation) in person.conversations.iter().enumerate() {
        for (a, attachment) in conversation.attachments.iter().enumerate() {
            let path = crate::attachments::path_of(data_dir, &attachment.id);
            let file = if attachment.status == "stored" {
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        let name =
                            photo_file_name(&attachment.id, attachment.content_type.as_deref());
                        photos.push((name.clone(), bytes));
                        Some(name)
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
                    Err(source) => return Err(PrivacyError::Io { path, source }),
                }
            } else {
                None
            };
            document["conversations"][c]["attachments"][a]["file"] = file.into();
        }
    }
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let text = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    // Photos are compressed already.
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    writer.start_file("contact.json", text).map_err(zip_error)?;
    let json =
        serde_json::to_vec_pretty(&document).map_err(|e| PrivacyError::Zip(e.to_string()))?;
    writer
        .write_all(&json)
        .map_err(|e| PrivacyError::Zip(e.to_string()))?;
    for (name, bytes) in &photos {
        writer
            .start_file(name.as_str(), stored)
            .map_err(zip_error)?;
        writer
            .write_all(bytes)
            .map_err(|e| PrivacyError::Zip(e.to_string()))?;
    }
    let zip = writer.finish().map_err(zip_error)?.into_inner();
    Ok(Export {
        zip,
        contacts: person.contacts.len(),
        conversations: person.conversations.len(),
        messages: person.conversations.iter().map(|c| c.messages.len()).sum(),
        photos: photos.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AttachmentRecord, ContactRecord, ConversationRecord};
    use std::io::Read;

    fn person(attachments: Vec<AttachmentRecord>) -> PersonData {
        PersonData {
            contacts: vec![ContactRecord {
                id: "k1".into(),
                channel: "whatsapp".into(),
                address: "15550001".into(),
                name: Some("Kerry".into()),
                linked_to: None,
                created_ms: 1,
            }],
            conversations: vec![ConversationRecord {
                id: "c1".into(),
                contact_id: "k1".into(),
                channel: "whatsapp".into(),
                business_account: "b".into(),
                owner: "bot".into(),
                status: "open".into(),
                created_ms: 1,
                updated_ms: 2,
                messages: Vec::new(),
                notes: Vec::new(),
                queue_items: Vec::new(),
                form: None,
                attachments,
            }],
        }
    }

    fn attachment(id: &str, status: &str) -> AttachmentRecord {
        AttachmentRecord {
            id: id.into(),
            message_id: "m1".into(),
            content_type: Some("image/png".into()),
            size: Some(3),
            status: status.into(),
            error: None,
            created_ms: 1,
        }
    }

    #[test]
    fn the_zip_holds_the_document_and_each_kept_photo() {
        let dir = std::env::temp_dir().join(format!("frontdesk-export-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("attachments")).unwrap();
        let kept = "a".repeat(32);
        std::fs::write(crate::attachments::path_of(&dir, &kept), b"png").unwrap();
        let failed = "b".repeat(32);
        let data = person(vec![
            attachment(&kept, "stored"),
            attachment(&failed, "failed"),
        ]);
        let export = build(&data, "k1", &dir, 42).unwrap();
        assert_eq!((export.photos, export.conversations), (1, 1));
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(export.zip)).unwrap();
        let mut json = String::new();
        archive
            .by_name("contact.json")
            .unwrap()
            .read_to_string(&mut json)
            .unwrap();
        let document: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(document["format"], FORMAT);
        assert_eq!(document["contacts"][0]["name"], "Kerry");
        let listed = &document["conversations"][0]["attachments"];
        assert_eq!(listed[0]["file"], format!("attachments/{kept}.png"));
        assert!(listed[1]["file"].is_null());
        let mut bytes = Vec::new();
        archive
            .by_name(&format!("attachments/{kept}.png"))
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes, b"png");
        assert_eq!(archive.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
