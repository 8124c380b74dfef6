-- Demand board (M2.4): district companies publish demands, OPCs propose, an accepted proposal
-- becomes a cooperation whose payments (recorded by the company, confirmed by the OPC) are the
-- record the policy engine settles M2.4 from. Also in-app notifications, S3 flags for likely
-- double claims and content-addressed files (attachments, invoices). Portable SQL.

CREATE TABLE demand_files (
    sha256 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    body BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE demands (
    id TEXT PRIMARY KEY,
    enterprise_id TEXT NOT NULL REFERENCES enterprises(id),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL,
    budget_min_fen BIGINT NOT NULL,
    budget_max_fen BIGINT NOT NULL,
    deadline TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX demands_enterprise ON demands(enterprise_id);
CREATE INDEX demands_status ON demands(status, deadline);

CREATE TABLE demand_attachments (
    demand_id TEXT NOT NULL REFERENCES demands(id),
    sha256 TEXT NOT NULL REFERENCES demand_files(sha256),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (demand_id, sha256)
);

CREATE TABLE demand_proposals (
    id TEXT PRIMARY KEY,
    demand_id TEXT NOT NULL REFERENCES demands(id),
    opc_id TEXT NOT NULL REFERENCES opcs(id),
    price_fen BIGINT NOT NULL,
    timeline_days BIGINT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (demand_id, opc_id)
);
CREATE INDEX demand_proposals_opc ON demand_proposals(opc_id);

CREATE TABLE demand_messages (
    id TEXT PRIMARY KEY,
    proposal_id TEXT NOT NULL REFERENCES demand_proposals(id),
    author_user_id TEXT NOT NULL REFERENCES users(id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX demand_messages_proposal ON demand_messages(proposal_id, created_at);

CREATE TABLE cooperations (
    id TEXT PRIMARY KEY,
    demand_id TEXT NOT NULL UNIQUE REFERENCES demands(id),
    proposal_id TEXT NOT NULL UNIQUE REFERENCES demand_proposals(id),
    enterprise_id TEXT NOT NULL REFERENCES enterprises(id),
    opc_id TEXT NOT NULL REFERENCES opcs(id),
    title TEXT NOT NULL,
    agreed_fen BIGINT NOT NULL,
    milestones TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX cooperations_enterprise ON cooperations(enterprise_id);
CREATE INDEX cooperations_opc ON cooperations(opc_id);

CREATE TABLE cooperation_amendments (
    id TEXT PRIMARY KEY,
    cooperation_id TEXT NOT NULL REFERENCES cooperations(id),
    agreed_fen BIGINT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    proposed_by TEXT NOT NULL REFERENCES users(id),
    decided_by TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX cooperation_amendments_coop ON cooperation_amendments(cooperation_id);

CREATE TABLE cooperation_payments (
    id TEXT PRIMARY KEY,
    cooperation_id TEXT NOT NULL REFERENCES cooperations(id),
    amount_fen BIGINT NOT NULL,
    paid_on TEXT NOT NULL,
    invoice_number TEXT NOT NULL UNIQUE,
    invoice_sha256 TEXT,
    status TEXT NOT NULL,
    recorded_by TEXT NOT NULL REFERENCES users(id),
    confirmed_by TEXT,
    confirmed_at BIGINT,
    ledger_leaf_index BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX cooperation_payments_coop ON cooperation_payments(cooperation_id);

CREATE TABLE cooperation_disputes (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL UNIQUE REFERENCES cooperation_payments(id),
    raised_by TEXT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    resolution TEXT,
    resolution_note TEXT,
    resolved_by TEXT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
CREATE INDEX cooperation_disputes_status ON cooperation_disputes(status);

CREATE TABLE cooperation_ratings (
    cooperation_id TEXT NOT NULL REFERENCES cooperations(id),
    rater_side TEXT NOT NULL,
    score BIGINT NOT NULL,
    comment TEXT NOT NULL,
    rated_by TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (cooperation_id, rater_side)
);

CREATE TABLE demand_flags (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    clause TEXT NOT NULL,
    cooperation_id TEXT NOT NULL,
    other_payment_id TEXT,
    invoice_number TEXT NOT NULL,
    attempted_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX demand_flags_at ON demand_flags(created_at);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    title TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT
);
CREATE INDEX notifications_user ON notifications(user_id, read_at);
