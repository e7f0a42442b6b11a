//! The migration sets, one per backend. Each entry is applied once, in order,
//! and recorded in `frontdesk_migrations`. Never edit an applied entry: append.

/// (version, statements) for SQLite.
pub const SQLITE: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    display_name TEXT,
    linked_to TEXT,
    created_ms INTEGER NOT NULL,
    UNIQUE (channel, address)
);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts(id),
    channel TEXT NOT NULL,
    business_account TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT 'bot',
    status TEXT NOT NULL DEFAULT 'open',
    thread_ref TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (contact_id, channel, business_account)
);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    direction TEXT NOT NULL,
    author TEXT NOT NULL,
    channel TEXT NOT NULL,
    provider_message_id TEXT,
    text TEXT NOT NULL,
    subject TEXT,
    status TEXT NOT NULL,
    action TEXT,
    reason TEXT,
    confidence REAL,
    sources TEXT,
    reply_to TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (channel, provider_message_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_ms);
CREATE TABLE jobs (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX jobs_pending ON jobs (state, created_ms);
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages(id),
    idempotency_key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    business_account TEXT NOT NULL,
    text TEXT NOT NULL,
    subject TEXT,
    in_reply_to TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_message_id TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
CREATE TABLE queue_items (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    message_id TEXT NOT NULL UNIQUE REFERENCES messages(id),
    reason TEXT NOT NULL,
    priority INTEGER NOT NULL,
    summary TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    resolved_ms INTEGER
);
CREATE INDEX queue_open ON queue_items (state, priority, created_ms);
"#,
    ),
    // The inbox: provider timestamps (messaging windows), failure reasons, read
    // marks, the event log every replica streams, notes, accounts, sessions,
    // API tokens and the owner-alert throttle.
    (
        2,
        r#"
ALTER TABLE messages ADD COLUMN provider_ms INTEGER;
ALTER TABLE messages ADD COLUMN error TEXT;
ALTER TABLE conversations ADD COLUMN read_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN template TEXT;
ALTER TABLE outbox ADD COLUMN tag TEXT;
ALTER TABLE queue_items ADD COLUMN fields TEXT;
CREATE INDEX conversations_recent ON conversations (updated_ms);
CREATE INDEX contacts_linked ON contacts (linked_to);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    conversation_id TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX events_by_time ON events (created_ms);
CREATE TABLE notes (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX notes_by_conversation ON notes (conversation_id, created_ms);
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE TABLE alerts (
    conversation_id TEXT PRIMARY KEY,
    last_sent_ms INTEGER NOT NULL
);
"#,
    ),
    // Forms: the state of the form being collected in each conversation.
    (
        3,
        r#"
CREATE TABLE form_states (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    form TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
"#,
    ),
    // Photos: one row per picture a customer sent, written with its message;
    // the bytes live in the data dir under the id.
    (
        4,
        r#"
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages(id),
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    position INTEGER NOT NULL,
    source_kind TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    declared_type TEXT,
    content_type TEXT,
    size INTEGER,
    status TEXT NOT NULL,
    error TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX attachments_by_message ON attachments (message_id);
CREATE INDEX attachments_by_conversation ON attachments (conversation_id);
"#,
    ),
    // Signed webhook posts already used (Mailgun's timestamp + token, as a
    // sha256): a replay inside the freshness window is refused on every replica.
    (
        5,
        r#"
CREATE TABLE webhook_tokens (
    token_hash TEXT PRIMARY KEY,
    seen_ms INTEGER NOT NULL
);
CREATE INDEX webhook_tokens_by_age ON webhook_tokens (seen_ms);
"#,
    ),
    // Delivery under outages: which earlier attempt may have reached the
    // provider (reconciled before a resend), the earliest the provider allows
    // the next attempt (Retry-After), and the index that finds a
    // conversation's other sends (one at a time, in order).
    (
        6,
        r#"
ALTER TABLE outbox ADD COLUMN unconfirmed_ms INTEGER;
ALTER TABLE outbox ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_by_message ON outbox (message_id);
"#,
    ),
];

/// (version, statements) for PostgreSQL.
pub const POSTGRES: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    display_name TEXT,
    linked_to TEXT,
    created_ms BIGINT NOT NULL,
    UNIQUE (channel, address)
);
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    contact_id TEXT NOT NULL REFERENCES contacts(id),
    channel TEXT NOT NULL,
    business_account TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT 'bot',
    status TEXT NOT NULL DEFAULT 'open',
    thread_ref TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    UNIQUE (contact_id, channel, business_account)
);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    direction TEXT NOT NULL,
    author TEXT NOT NULL,
    channel TEXT NOT NULL,
    provider_message_id TEXT,
    text TEXT NOT NULL,
    subject TEXT,
    status TEXT NOT NULL,
    action TEXT,
    reason TEXT,
    confidence DOUBLE PRECISION,
    sources TEXT,
    reply_to TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    UNIQUE (channel, provider_message_id)
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_ms);
CREATE TABLE jobs (
    message_id TEXT PRIMARY KEY REFERENCES messages(id),
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX jobs_pending ON jobs (state, created_ms);
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages(id),
    idempotency_key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    business_account TEXT NOT NULL,
    text TEXT NOT NULL,
    subject TEXT,
    in_reply_to TEXT,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    provider_message_id TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
CREATE TABLE queue_items (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    message_id TEXT NOT NULL UNIQUE REFERENCES messages(id),
    reason TEXT NOT NULL,
    priority BIGINT NOT NULL,
    summary TEXT NOT NULL,
    state TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    resolved_ms BIGINT
);
CREATE INDEX queue_open ON queue_items (state, priority, created_ms);
"#,
    ),
    (
        2,
        r#"
ALTER TABLE messages ADD COLUMN provider_ms BIGINT;
ALTER TABLE messages ADD COLUMN error TEXT;
ALTER TABLE conversations ADD COLUMN read_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN template TEXT;
ALTER TABLE outbox ADD COLUMN tag TEXT;
ALTER TABLE queue_items ADD COLUMN fields TEXT;
CREATE INDEX conversations_recent ON conversations (updated_ms);
CREATE INDEX contacts_linked ON contacts (linked_to);
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    conversation_id TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX events_by_time ON events (created_ms);
CREATE TABLE notes (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX notes_by_conversation ON notes (conversation_id, created_ms);
CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE TABLE alerts (
    conversation_id TEXT PRIMARY KEY,
    last_sent_ms BIGINT NOT NULL
);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE form_states (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    form TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
"#,
    ),
    // Photos: one row per picture a customer sent, written with its message;
    // the bytes live in the data dir under the id.
    (
        4,
        r#"
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES messages(id),
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    position BIGINT NOT NULL,
    source_kind TEXT NOT NULL,
    source_ref TEXT NOT NULL,
    declared_type TEXT,
    content_type TEXT,
    size BIGINT,
    status TEXT NOT NULL,
    error TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX attachments_by_message ON attachments (message_id);
CREATE INDEX attachments_by_conversation ON attachments (conversation_id);
"#,
    ),
    // Signed webhook posts already used (Mailgun's timestamp + token, as a
    // sha256): a replay inside the freshness window is refused on every replica.
    (
        5,
        r#"
CREATE TABLE webhook_tokens (
    token_hash TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
CREATE INDEX webhook_tokens_by_age ON webhook_tokens (seen_ms);
"#,
    ),
    // Delivery under outages: which earlier attempt may have reached the
    // provider (reconciled before a resend), the earliest the provider allows
    // the next attempt (Retry-After), and the index that finds a
    // conversation's other sends (one at a time, in order).
    (
        6,
        r#"
ALTER TABLE outbox ADD COLUMN unconfirmed_ms BIGINT;
ALTER TABLE outbox ADD COLUMN not_before_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX outbox_by_message ON outbox (message_id);
"#,
    ),
];
