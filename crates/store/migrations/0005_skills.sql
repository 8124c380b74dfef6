-- Skill Store (M2.3): skills published by OPCs, immutable semver versions (content hash,
-- price per call in fen, pinned tool list), review decisions, per-invoker enablement, one
-- row per counted call (mirroring the ledger's `skill.call` events), installs and ratings.
-- Portable SQL (SQLite + PostgreSQL).

CREATE TABLE skills (
    id TEXT PRIMARY KEY,
    -- Namespace of the skill's tools on /mcp (`{slug}__{tool}`): lowercase letters, digits, hyphens.
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    summary TEXT NOT NULL,
    -- mcp_server | http_tool | agent_skill | aigc_app
    kind TEXT NOT NULL,
    -- agent_tool | aigc_production | vertical_plugin
    category TEXT NOT NULL,
    tags TEXT NOT NULL,
    homepage_url TEXT,
    publisher_user_id TEXT NOT NULL REFERENCES users(id),
    publisher_party TEXT NOT NULL,
    -- The approved version that serves calls (NULL: not listed).
    live_version_id TEXT,
    -- Set when a periodic refresh finds the remote tool list changed from the pinned hash
    -- (a rug pull): calls are then not qualified until a version is approved again.
    drifted_at BIGINT,
    drifted_hash TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX skills_publisher ON skills(publisher_user_id);

CREATE TABLE skill_versions (
    id TEXT PRIMARY KEY,
    skill_id TEXT NOT NULL REFERENCES skills(id),
    version TEXT NOT NULL,
    -- draft → submitted → approved | rejected → delisted
    status TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    price_fen BIGINT NOT NULL,
    endpoint_url TEXT,
    tools TEXT NOT NULL,
    tools_hash TEXT NOT NULL,
    manifest TEXT,
    package_b64 TEXT,
    checks TEXT NOT NULL,
    submitted_at BIGINT,
    decided_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (skill_id, version)
);
CREATE INDEX skill_versions_status ON skill_versions(status, submitted_at);

CREATE TABLE skill_reviews (
    id TEXT PRIMARY KEY,
    version_id TEXT NOT NULL REFERENCES skill_versions(id),
    reviewer_user_id TEXT NOT NULL REFERENCES users(id),
    decision TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX skill_reviews_version ON skill_reviews(version_id);

CREATE TABLE skill_enablements (
    user_id TEXT NOT NULL REFERENCES users(id),
    skill_id TEXT NOT NULL REFERENCES skills(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, skill_id)
);

CREATE TABLE skill_calls (
    call_key TEXT PRIMARY KEY,
    skill_id TEXT NOT NULL REFERENCES skills(id),
    version_id TEXT NOT NULL,
    version_hash TEXT NOT NULL,
    tool TEXT NOT NULL,
    publisher_party TEXT NOT NULL,
    invoker_party TEXT NOT NULL,
    invoker_user_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    qualified BIGINT NOT NULL,
    not_qualified_reason TEXT,
    charged_fen BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    request_digest TEXT NOT NULL,
    response_digest TEXT NOT NULL,
    leaf_index BIGINT,
    day TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX skill_calls_skill ON skill_calls(skill_id, day);
CREATE INDEX skill_calls_publisher ON skill_calls(publisher_party, day);
CREATE INDEX skill_calls_invoker ON skill_calls(invoker_party, day);

CREATE TABLE skill_installs (
    version_id TEXT NOT NULL REFERENCES skill_versions(id),
    invoker_user_id TEXT NOT NULL REFERENCES users(id),
    invoker_party TEXT NOT NULL,
    leaf_index BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (version_id, invoker_user_id)
);

CREATE TABLE skill_ratings (
    skill_id TEXT NOT NULL REFERENCES skills(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    stars BIGINT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (skill_id, user_id)
);
