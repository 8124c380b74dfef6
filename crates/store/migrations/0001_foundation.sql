-- OPC Hub foundation schema. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Integers are BIGINT, times are milliseconds since the Unix epoch (UTC), money is integer fen.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE theme_packages (
    code TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL,
    description_zh TEXT NOT NULL,
    description_en TEXT NOT NULL,
    business_scope TEXT NOT NULL,
    sort_order BIGINT NOT NULL
);

CREATE TABLE communities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    company_name TEXT NOT NULL,
    company_uscc TEXT NOT NULL,
    zone TEXT NOT NULL,
    address TEXT NOT NULL,
    operator_user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX communities_operator ON communities(operator_user_id);

CREATE TABLE opcs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    uscc TEXT UNIQUE,
    registration_status TEXT NOT NULL,
    founder_name TEXT NOT NULL,
    founder_user_id TEXT NOT NULL UNIQUE REFERENCES users(id),
    zone TEXT NOT NULL,
    theme_package TEXT NOT NULL REFERENCES theme_packages(code),
    community_id TEXT NOT NULL REFERENCES communities(id),
    specialist_user_id TEXT REFERENCES users(id),
    tax_registered BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX opcs_specialist ON opcs(specialist_user_id);

CREATE TABLE workstations (
    id TEXT PRIMARY KEY,
    community_id TEXT NOT NULL REFERENCES communities(id),
    number TEXT NOT NULL,
    status TEXT NOT NULL,
    opc_id TEXT UNIQUE REFERENCES opcs(id),
    updated_at BIGINT NOT NULL,
    UNIQUE (community_id, number)
);
CREATE INDEX workstations_status ON workstations(community_id, status);

CREATE TABLE enterprises (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    uscc TEXT NOT NULL UNIQUE,
    zone TEXT NOT NULL,
    owner_user_id TEXT NOT NULL UNIQUE REFERENCES users(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    opc_id TEXT NOT NULL REFERENCES opcs(id),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tickets_opc ON tickets(opc_id);
CREATE INDEX tickets_status ON tickets(status);

CREATE TABLE ticket_messages (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    author_user_id TEXT NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_messages_ticket ON ticket_messages(ticket_id);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_user_id TEXT,
    actor_role TEXT,
    action TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    before_digest TEXT,
    after_digest TEXT,
    summary TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_object ON audit_log(object_kind, object_id);
