//! Property tests over `POST /chat/upload`'s multipart body: any body, and
//! well-formed posts cut short or with hostile parts, must be read or
//! refused without panicking, and a photo is never held much past the cap.

use super::*;
use crate::proptest_support::{config, hostile_text};
use axum::extract::FromRequest;
use proptest::prelude::*;

const CAP: usize = 4 * 1024;

/// One part: its name, file name, content type and bytes.
type Part = (String, Option<String>, Option<String>, Vec<u8>);

fn part() -> impl Strategy<Value = Part> {
    let name = prop_oneof![
        4 => proptest::sample::select(&["visitor", "client_id", "user_id", "user_signature", "photo"][..])
            .prop_map(str::to_string),
        1 => hostile_text(),
    ];
    let content_type = proptest::option::of(prop_oneof![
        Just("image/jpeg".to_string()),
        Just("text/plain; charset=utf-8".to_string()),
        hostile_text(),
    ]);
    let bytes = prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => (any::<u8>(), CAP - 8..CAP * 3).prop_map(|(byte, n)| vec![byte; n]),
        2 => hostile_text().prop_map(String::into_bytes),
    ];
    (
        name,
        proptest::option::of(hostile_text()),
        content_type,
        bytes,
    )
}

fn multipart_body(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, content_type, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(file_name) = file_name {
            body.extend_from_slice(format!("; filename=\"{file_name}\"").as_bytes());
        }
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("\r\nContent-Type: {content_type}").as_bytes());
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn upload_post() -> impl Strategy<Value = (String, Vec<u8>)> {
    let boundary = prop_oneof![
        3 => Just("frontdesk-boundary".to_string()),
        1 => hostile_text(),
    ];
    (
        boundary,
        proptest::collection::vec(part(), 0..6),
        any::<prop::sample::Index>(),
        0u8..4,
    )
        .prop_map(|(boundary, parts, cut, damage)| {
            let mut body = multipart_body(&boundary, &parts);
            match damage {
                0 => body.truncate(cut.index(body.len() + 1)),
                1 => body.retain(|b| *b != b'\r'),
                _ => {}
            }
            (boundary, body)
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn proptest_upload_bodies_never_panic_and_photos_stay_capped(
        (boundary, body) in prop_oneof![
            3 => upload_post(),
            1 => (hostile_text(), proptest::collection::vec(any::<u8>(), 0..512)),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/chat/upload")
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(axum::body::Body::from(body.clone()));
        let Ok(request) = request else { return Ok(()) };
        let read = runtime.block_on(async {
            let multipart = Multipart::from_request(request, &()).await.ok()?;
            Some(read_upload(multipart, CAP).await)
        });
        if let Some(Ok(upload)) = read {
            if let Some((_, photo)) = &upload.photo {
                // Read on only until just past the cap (by one chunk at most).
                prop_assert!(photo.len() <= body.len());
                prop_assert!(photo.len() <= CAP + 64 * 1024, "{}", photo.len());
            }
            // Text parts are decoded lossily: a stray byte becomes U+FFFD (3 bytes).
            prop_assert!(upload.visitor.len() + upload.client_id.len() <= 3 * body.len());
        }
    }
}
