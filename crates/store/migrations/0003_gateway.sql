-- Factor gateway (M2.2): upstream model channels run by community operators, versioned price
-- tables, per-key limits and monthly budgets (held by reservation), and one outcome row per
-- caller-visible request. Portable SQL (SQLite + PostgreSQL).

CREATE TABLE gateway_channels (
    id TEXT PRIMARY KEY,
    operator_user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    base_url TEXT NOT NULL,
    secret_enc TEXT NOT NULL,
    models TEXT NOT NULL,
    priority BIGINT NOT NULL,
    weight BIGINT NOT NULL,
    timeout_ms BIGINT NOT NULL,
    status TEXT NOT NULL,
    approved_by TEXT,
    healthy BIGINT NOT NULL,
    last_error TEXT,
    last_checked_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE gateway_prices (
    operator_user_id TEXT NOT NULL REFERENCES users(id),
    version TEXT NOT NULL,
    effective_from BIGINT NOT NULL,
    model TEXT NOT NULL,
    list_input BIGINT NOT NULL,
    opc_input BIGINT NOT NULL,
    list_cached BIGINT NOT NULL,
    opc_cached BIGINT NOT NULL,
    list_output BIGINT NOT NULL,
    opc_output BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (operator_user_id, version, model)
);

CREATE TABLE gateway_key_limits (
    api_key_id TEXT PRIMARY KEY REFERENCES api_keys(id),
    allowed_models TEXT NOT NULL,
    rpm BIGINT NOT NULL,
    tpm BIGINT NOT NULL,
    monthly_budget_fen BIGINT NOT NULL
);

CREATE TABLE gateway_budgets (
    api_key_id TEXT NOT NULL,
    month TEXT NOT NULL,
    spent_fen BIGINT NOT NULL,
    held_fen BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, month)
);

CREATE TABLE gateway_requests (
    request_id TEXT PRIMARY KEY,
    api_key_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    channel_id TEXT,
    model TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    outcome TEXT NOT NULL,
    http_status BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    estimated BIGINT NOT NULL,
    list_fen BIGINT NOT NULL,
    charged_fen BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX gateway_requests_key ON gateway_requests(api_key_id, created_at);
