//! Settings for `serve`: `frontdesk.toml` (path from `--config`), each key
//! overridable by an environment variable `FRONTDESK_<SECTION>_<KEY>` (top-level
//! keys: `FRONTDESK_<KEY>`; the database: `DATABASE_URL`). Names are fixed by
//! FORMATS.md §5. Secrets are wrapped in [`Secret`] so they never print.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A value that must never appear in logs or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhatsappSettings {
    pub app_secret: Option<Secret>,
    pub verify_token: Option<Secret>,
    pub access_token: Option<Secret>,
    /// Approved message templates, the only thing WhatsApp lets a business send
    /// once the customer's 24-hour window has closed.
    pub templates: Vec<WhatsappTemplate>,
}

/// One approved WhatsApp template, as registered with Meta.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WhatsappTemplate {
    pub name: String,
    /// The template's language code, e.g. `en_US`.
    pub language: String,
    /// What each `{{n}}` of the body stands for, in order (shown in the inbox).
    #[serde(default)]
    pub parameters: Vec<String>,
}

/// A reply the owner sends often; `{field}` in `text` is filled in before sending.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CannedReply {
    pub title: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxSettings {
    pub canned: Vec<CannedReply>,
    /// Sessions last this many days (default 14).
    pub session_days: Option<u32>,
}

/// Where the owner is told about a new queue item while she is not looking.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Her own phone (E.164), texted through the Twilio settings.
    pub sms_to: Option<String>,
    /// Her mailbox, written to through the SMTP settings.
    pub email_to: Option<String>,
}

/// Photos customers send (`[attachments]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentSettings {
    /// The largest photo kept, in bytes (default 10 MB): a bigger one is
    /// refused while it downloads, and the customer is told.
    pub max_bytes: u64,
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        AttachmentSettings {
            max_bytes: crate::attachments::DEFAULT_MAX_BYTES,
        }
    }
}

/// How long conversations are kept (`[retention]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Conversations with no activity for this many days are deleted, with
    /// their messages, photos, forms and queue items (one with an open queue
    /// item is kept). Absent or 0: everything is kept.
    pub days: Option<u32>,
}

/// What one `serve` process takes in before it sheds load (`[limits]`).
/// These keys are ours (FORMATS.md §5 does not list them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Webhook requests handled at once; one more is answered 503 with
    /// `Retry-After` before its body is read, so a flood costs at most this
    /// many bodies of memory and the group commit's queue never grows past it.
    pub inflight_webhooks: usize,
    /// Megabytes of webhook bodies handled at once (by `Content-Length`, or
    /// the route's largest body where a post does not say): one more is
    /// answered 503 with `Retry-After` before its body is read. This bounds
    /// memory where bodies are big (emails with photos), as the count above
    /// cannot.
    pub inflight_body_mb: usize,
    /// Messages one sender (channel + address) may send in a burst.
    pub sender_burst: u32,
    /// Messages per minute one sender may send once the burst is spent;
    /// over it the webhook is answered 429 with `Retry-After` (nothing stored).
    pub sender_per_minute: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            inflight_webhooks: 64,
            inflight_body_mb: 128,
            sender_burst: 20,
            sender_per_minute: 60,
        }
    }
}

/// The store (`[store]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `power-safe` (default): an acknowledged message survives a power loss;
    /// `process-crash`: only a crash of the process (see `store::Durability`).
    pub durability: crate::store::Durability,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaSettings {
    pub app_secret: Option<Secret>,
    pub verify_token: Option<Secret>,
    pub page_access_token: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioSettings {
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    pub from: Option<String>,
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// Mailgun webhook signing key (checks inbound posts).
    pub signing_key: Option<Secret>,
    /// `smtp://user:pass@host:port` or `smtps://…` for replies.
    pub smtp_url: Option<Secret>,
    pub from: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub knowledge: PathBuf,
    pub models: PathBuf,
    pub public_url: Option<String>,
    pub graph_base_url: String,
    pub graph_api_version: String,
    /// Answer workers per process (each runs the models on a blocking thread).
    pub workers: usize,
    /// Sends in flight at once per process: one hung send must not hold every
    /// other conversation's reply (a conversation still sends one at a time).
    pub delivery_concurrency: usize,
    /// How long one send may take before it counts as failed.
    pub send_timeout_ms: u64,
    pub whatsapp: WhatsappSettings,
    pub meta: MetaSettings,
    pub twilio: TwilioSettings,
    pub email: EmailSettings,
    pub inbox: InboxSettings,
    pub alerts: AlertSettings,
    pub attachments: AttachmentSettings,
    pub retention: RetentionSettings,
    pub store: StoreSettings,
    pub limits: LimitSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            knowledge: PathBuf::from("knowledge"),
            models: PathBuf::from("models"),
            public_url: None,
            graph_base_url: crate::channels::graph::DEFAULT_BASE_URL.into(),
            graph_api_version: crate::channels::graph::DEFAULT_API_VERSION.into(),
            workers: 2,
            delivery_concurrency: 8,
            send_timeout_ms: crate::channels::SEND_TIMEOUT.as_millis() as u64,
            whatsapp: WhatsappSettings::default(),
            meta: MetaSettings::default(),
            twilio: TwilioSettings::default(),
            email: EmailSettings::default(),
            inbox: InboxSettings::default(),
            alerts: AlertSettings::default(),
            attachments: AttachmentSettings::default(),
            retention: RetentionSettings::default(),
            store: StoreSettings::default(),
            limits: LimitSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
}

/// Every setting that can come from the environment: (env name, section, key).
const ENVIRONMENT: &[(&str, &str, &str)] = &[
    ("FRONTDESK_LISTEN", "", "listen"),
    ("FRONTDESK_DATA_DIR", "", "data_dir"),
    ("DATABASE_URL", "", "database_url"),
    ("FRONTDESK_KNOWLEDGE", "", "knowledge"),
    ("FRONTDESK_MODELS_DIR", "", "models"),
    ("FRONTDESK_PUBLIC_URL", "", "public_url"),
    ("FRONTDESK_GRAPH_BASE_URL", "", "graph_base_url"),
    ("FRONTDESK_GRAPH_API_VERSION", "", "graph_api_version"),
    ("FRONTDESK_WORKERS", "", "workers"),
    ("FRONTDESK_DELIVERY_CONCURRENCY", "", "delivery_concurrency"),
    ("FRONTDESK_SEND_TIMEOUT_MS", "", "send_timeout_ms"),
    ("FRONTDESK_WHATSAPP_APP_SECRET", "whatsapp", "app_secret"),
    (
        "FRONTDESK_WHATSAPP_VERIFY_TOKEN",
        "whatsapp",
        "verify_token",
    ),
    (
        "FRONTDESK_WHATSAPP_ACCESS_TOKEN",
        "whatsapp",
        "access_token",
    ),
    ("FRONTDESK_META_APP_SECRET", "meta", "app_secret"),
    ("FRONTDESK_META_VERIFY_TOKEN", "meta", "verify_token"),
    (
        "FRONTDESK_META_PAGE_ACCESS_TOKEN",
        "meta",
        "page_access_token",
    ),
    ("FRONTDESK_TWILIO_ACCOUNT_SID", "twilio", "account_sid"),
    ("FRONTDESK_TWILIO_AUTH_TOKEN", "twilio", "auth_token"),
    ("FRONTDESK_TWILIO_FROM", "twilio", "from"),
    ("FRONTDESK_TWILIO_BASE_URL", "twilio", "base_url"),
    ("FRONTDESK_EMAIL_SIGNING_KEY", "email", "signing_key"),
    ("FRONTDESK_EMAIL_SMTP_URL", "email", "smtp_url"),
    ("FRONTDESK_EMAIL_FROM", "email", "from"),
    ("FRONTDESK_ALERTS_SMS_TO", "alerts", "sms_to"),
    ("FRONTDESK_ALERTS_EMAIL_TO", "alerts", "email_to"),
    (
        "FRONTDESK_ATTACHMENTS_MAX_BYTES",
        "attachments",
        "max_bytes",
    ),
    ("FRONTDESK_RETENTION_DAYS", "retention", "days"),
    ("FRONTDESK_STORE_DURABILITY", "store", "durability"),
    (
        "FRONTDESK_LIMITS_INFLIGHT_WEBHOOKS",
        "limits",
        "inflight_webhooks",
    ),
    (
        "FRONTDESK_LIMITS_INFLIGHT_BODY_MB",
        "limits",
        "inflight_body_mb",
    ),
    ("FRONTDESK_LIMITS_SENDER_BURST", "limits", "sender_burst"),
    (
        "FRONTDESK_LIMITS_SENDER_PER_MINUTE",
        "limits",
        "sender_per_minute",
    ),
];

impl Settings {
    /// Reads the file (if given) and applies the environment on top.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with(file, |name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`] with an explicit environment (for tests).
    pub fn load_with(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        for (name, section, key) in ENVIRONMENT {
            let Some(value) = env(name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = if matches!(
                *key,
                "workers"
                    | "max_bytes"
                    | "days"
                    | "delivery_concurrency"
                    | "send_timeout_ms"
                    | "inflight_webhooks"
                    | "inflight_body_mb"
                    | "sender_burst"
                    | "sender_per_minute"
            ) {
                let number: u32 = value.parse().map_err(|_| ConfigError::Env {
                    name: name.to_string(),
                    message: "must be a whole number from 0 to 4294967295".into(),
                })?;
                toml::Value::Integer(number.into())
            } else {
                toml::Value::String(value)
            };
            let target = if section.is_empty() {
                &mut table
            } else {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(inner) => inner,
                    _ => {
                        return Err(ConfigError::Env {
                            name: name.to_string(),
                            message: format!("`{section}` in the file is not a table"),
                        })
                    }
                }
            };
            target.insert(key.to_string(), value);
        }
        let label = file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "settings".into());
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: label,
                message: e.to_string(),
            })
    }

    /// What providers call: `FRONTDESK_PUBLIC_URL`, else `http://<listen>`.
    pub fn public_base(&self, bound: &str) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_string()
    }

    /// The database URL: `DATABASE_URL`, else SQLite in the data dir.
    pub fn database(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => crate::store::Store::sqlite_url(&self.data_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_secrets_do_not_print() {
        let dir = std::env::temp_dir().join(format!("frontdesk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("frontdesk.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\n[whatsapp]\nverify_token = \"from-file\"\napp_secret = \"s3cret-file\"\n").unwrap();
        let settings = Settings::load_with(Some(&file), |name| match name {
            "FRONTDESK_WHATSAPP_APP_SECRET" => Some("s3cret-env".into()),
            "FRONTDESK_WORKERS" => Some("3".into()),
            "FRONTDESK_DELIVERY_CONCURRENCY" => Some("16".into()),
            "FRONTDESK_SEND_TIMEOUT_MS" => Some("1500".into()),
            "FRONTDESK_ATTACHMENTS_MAX_BYTES" => Some("2048".into()),
            "FRONTDESK_RETENTION_DAYS" => Some("400".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(settings.listen, "0.0.0.0:9000");
        assert_eq!(
            settings.whatsapp.app_secret.as_ref().unwrap().expose(),
            "s3cret-env"
        );
        assert_eq!(
            settings.whatsapp.verify_token.as_ref().unwrap().expose(),
            "from-file"
        );
        assert_eq!(settings.workers, 3);
        assert_eq!(settings.delivery_concurrency, 16);
        assert_eq!(settings.send_timeout_ms, 1500);
        assert_eq!(settings.attachments.max_bytes, 2048);
        assert_eq!(settings.retention.days, Some(400));
        let printed = format!("{settings:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
    }

    #[test]
    fn durability_is_power_safe_unless_relaxed() {
        use crate::store::Durability;
        let default = Settings::load_with(None, |_| None).unwrap();
        assert_eq!(default.store.durability, Durability::PowerSafe);
        let relaxed = Settings::load_with(None, |name| {
            (name == "FRONTDESK_STORE_DURABILITY").then(|| "process-crash".into())
        })
        .unwrap();
        assert_eq!(relaxed.store.durability, Durability::ProcessCrash);
        let typo = Settings::load_with(None, |name| {
            (name == "FRONTDESK_STORE_DURABILITY").then(|| "fast".into())
        });
        assert!(typo.unwrap_err().to_string().contains("fast"));
    }

    #[test]
    fn limits_come_from_the_file_and_the_environment_wins() {
        let default = Settings::load_with(None, |_| None).unwrap().limits;
        assert_eq!(
            (
                default.inflight_webhooks,
                default.sender_burst,
                default.sender_per_minute
            ),
            (64, 20, 60)
        );
        let dir =
            std::env::temp_dir().join(format!("frontdesk-config-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("frontdesk.toml");
        std::fs::write(&file, "[limits]\ninflight_webhooks = 8\nsender_burst = 3\n").unwrap();
        let limits = Settings::load_with(Some(&file), |name| {
            (name == "FRONTDESK_LIMITS_SENDER_BURST").then(|| "5".into())
        })
        .unwrap()
        .limits;
        // From the file, from the environment over the file, and the default.
        assert_eq!(limits.inflight_webhooks, 8);
        assert_eq!(limits.sender_burst, 5);
        assert_eq!(limits.sender_per_minute, 60);
        let per_minute = Settings::load_with(None, |name| {
            (name == "FRONTDESK_LIMITS_SENDER_PER_MINUTE").then(|| "120".into())
        })
        .unwrap()
        .limits;
        assert_eq!(per_minute.sender_per_minute, 120);
        for bad in ["many", "-1", "1.5"] {
            let error = Settings::load_with(None, |name| {
                (name == "FRONTDESK_LIMITS_INFLIGHT_WEBHOOKS").then(|| bad.into())
            })
            .unwrap_err()
            .to_string();
            assert!(
                error.contains("FRONTDESK_LIMITS_INFLIGHT_WEBHOOKS"),
                "{bad}: {error}"
            );
        }
        let typo = std::fs::write(&file, "[limits]\nsender_brust = 3\n");
        typo.unwrap();
        let error = Settings::load_with(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("sender_brust"), "{error}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = std::env::temp_dir().join(format!("frontdesk-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("frontdesk.toml");
        std::fs::write(&file, "[whatsapp]\napp_secrte = \"x\"\n").unwrap();
        let error = Settings::load_with(Some(&file), |_| None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("app_secrte"), "{error}");
    }
}
