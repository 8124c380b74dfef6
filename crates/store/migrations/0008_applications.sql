-- Applications and funds (issue 8): clauses paid or granted on application (M1, M3, M5, M6,
-- M7, M8) go through the review stages of F1; evidence is stored by SHA-256 (F2); the finance
-- bureau pays approved applications in batches; false evidence or a serious violation leads to
-- a recovery order (F2, S5) and onto the platform's own no-support list (feeds F3).

-- Which district agency an agency user belongs to (science_technology, finance, …).
ALTER TABLE users ADD COLUMN agency TEXT;

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    clause TEXT NOT NULL,
    applicant_user_id TEXT NOT NULL REFERENCES users(id),
    beneficiary TEXT NOT NULL,
    beneficiary_role TEXT NOT NULL,
    beneficiary_name TEXT NOT NULL,
    uscc TEXT,
    agency TEXT,
    year BIGINT NOT NULL,
    project_id TEXT,
    -- The applicant's answers (facts), as JSON.
    form TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT,
    stage_since BIGINT,
    -- The engine's amount and decision (trace) at the last computation.
    engine_fen BIGINT,
    decision TEXT,
    decided_fen BIGINT,
    decided_by TEXT,
    decision_reason TEXT,
    paid_fen BIGINT NOT NULL DEFAULT 0,
    -- Optimistic concurrency: every change bumps it; an action names the version it saw.
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    submitted_at BIGINT
);
CREATE INDEX applications_applicant ON applications(applicant_user_id);
CREATE INDEX applications_status ON applications(status, stage);

CREATE TABLE application_files (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    slot BIGINT NOT NULL,
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    false_reason TEXT,
    false_by TEXT,
    false_at BIGINT
);
CREATE INDEX application_files_app ON application_files(application_id);

-- Every status change, with who, when and why: the applicant's timeline and the audit trail.
CREATE TABLE application_events (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    at BIGINT NOT NULL,
    actor_user_id TEXT,
    actor_role TEXT,
    stage TEXT,
    action TEXT NOT NULL,
    status_after TEXT NOT NULL,
    note TEXT,
    amount_fen BIGINT
);
CREATE INDEX application_events_app ON application_events(application_id, at);

-- Conflict of interest: a reviewer who declined acts no more on the application.
CREATE TABLE application_declines (
    application_id TEXT NOT NULL REFERENCES applications(id),
    user_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (application_id, user_id)
);

CREATE TABLE fund_batches (
    id TEXT PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    line_count BIGINT NOT NULL,
    approved_fen BIGINT NOT NULL,
    offset_fen BIGINT NOT NULL,
    paid_fen BIGINT NOT NULL
);

CREATE TABLE fund_payments (
    batch_id TEXT NOT NULL REFERENCES fund_batches(id),
    application_id TEXT NOT NULL UNIQUE REFERENCES applications(id),
    approved_fen BIGINT NOT NULL,
    offset_fen BIGINT NOT NULL,
    paid_fen BIGINT NOT NULL,
    payment_reference TEXT NOT NULL,
    PRIMARY KEY (batch_id, application_id)
);

CREATE TABLE recovery_orders (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id),
    beneficiary TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    paid_fen BIGINT NOT NULL,
    recomputed_fen BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    settled_fen BIGINT NOT NULL,
    due_on TEXT NOT NULL,
    status TEXT NOT NULL,
    decision TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX recovery_orders_beneficiary ON recovery_orders(beneficiary, status);

CREATE TABLE recovery_settlements (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES recovery_orders(id),
    kind TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    recorded_by TEXT NOT NULL,
    at BIGINT NOT NULL
);

-- The platform's own no-support list (F2, S5 → F3 excluded_by_review): by USCC, or by party id
-- for a beneficiary without one, for the period the policy file sets.
CREATE TABLE no_support (
    id TEXT PRIMARY KEY,
    party_key TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    reason TEXT NOT NULL,
    order_id TEXT,
    from_ms BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX no_support_key ON no_support(party_key);
