-- Usage ledger: append-only events (the Merkle leaves, in commit order), the stored hashes of
-- the RFC 6962 tree (Go tlog "stored hash index" layout), signed checkpoints, daily rollups,
-- conservation counters, sealed periods and outside sources. Portable SQL (SQLite + PostgreSQL).

CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY,
    size BIGINT NOT NULL
);
INSERT INTO ledger_head (id, size) VALUES (1, 0);

CREATE TABLE ledger_events (
    leaf_index BIGINT PRIMARY KEY,
    source TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    unit TEXT NOT NULL,
    list_fen BIGINT NOT NULL,
    charged_fen BIGINT NOT NULL,
    price_version TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    origin TEXT NOT NULL,
    attributes TEXT NOT NULL,
    corrects_leaf_index BIGINT,
    correction_reason TEXT,
    requested_by TEXT,
    approved_by TEXT,
    period TEXT NOT NULL,
    late BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    leaf_hash TEXT NOT NULL,
    UNIQUE (source, source_event_id)
);
CREATE INDEX ledger_events_subject ON ledger_events(subject, period);
CREATE INDEX ledger_events_counterparty ON ledger_events(counterparty, period);

CREATE TABLE ledger_hashes (
    idx BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

CREATE TABLE ledger_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root TEXT NOT NULL,
    note TEXT NOT NULL,
    reason TEXT NOT NULL,
    counters TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ledger_rollups (
    day TEXT NOT NULL,
    subject TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    list_fen BIGINT NOT NULL,
    charged_fen BIGINT NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (day, subject, counterparty, kind, unit)
);

CREATE TABLE ledger_counters (
    source TEXT PRIMARY KEY,
    received BIGINT NOT NULL,
    stored BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejected BIGINT NOT NULL
);

CREATE TABLE ledger_periods (
    period TEXT PRIMARY KEY,
    sealed_at BIGINT NOT NULL,
    tree_size BIGINT NOT NULL,
    sealed_by TEXT NOT NULL
);

CREATE TABLE ledger_sources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    owner_user_id TEXT NOT NULL REFERENCES users(id),
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    rate_per_minute BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
