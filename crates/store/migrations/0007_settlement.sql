-- 免申即享 settlement (issue 6): the rollups also keep what was not qualified, the company facts
-- G2 needs for operators and enterprises, the versioned F3 exclusion lists, the S3 register
-- of other policies' grants, and settlement batches with one line (and trace) per beneficiary.

-- The part of each rollup that came from events marked `qualified = false` (self-dealing,
-- failed calls, unreviewed skill versions, M2.3). Qualified = total - uq_*.
ALTER TABLE ledger_rollups ADD COLUMN uq_quantity BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN uq_list_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN uq_charged_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN uq_events BIGINT NOT NULL DEFAULT 0;
-- Settlement reads one kind per pair and month in this order (GROUP BY streams, no sort).
CREATE INDEX ledger_rollups_kind_pair ON ledger_rollups(kind, subject, counterparty, day);

-- G2 for companies that are not OPCs: NULL = not known to the platform (never taken as false).
ALTER TABLE communities ADD COLUMN tax_registered BIGINT;
ALTER TABLE enterprises ADD COLUMN tax_registered BIGINT;

-- F3 lists, imported from CSV; every import of a kind is a new version, never an edit.
CREATE TABLE exclusion_lists (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    version BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    entries BIGINT NOT NULL,
    imported_by TEXT,
    imported_at BIGINT NOT NULL,
    UNIQUE (kind, version)
);

CREATE TABLE exclusion_entries (
    list_id TEXT NOT NULL REFERENCES exclusion_lists(id),
    line BIGINT NOT NULL,
    uscc TEXT NOT NULL,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_date TEXT,
    PRIMARY KEY (list_id, line)
);
CREATE INDEX exclusion_entries_uscc ON exclusion_entries(uscc);

-- S3: what other policies paid the same beneficiary for the same kind of item in a year.
CREATE TABLE overlap_grants (
    id TEXT PRIMARY KEY,
    beneficiary TEXT NOT NULL,
    overlap_group TEXT NOT NULL,
    year BIGINT NOT NULL,
    policy TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    recorded_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX overlap_grants_beneficiary ON overlap_grants(beneficiary, year);

CREATE TABLE settlement_batches (
    id TEXT PRIMARY KEY,
    year BIGINT NOT NULL,
    clauses TEXT NOT NULL,
    as_of TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    lists TEXT NOT NULL,
    status TEXT NOT NULL,
    total_fen BIGINT NOT NULL,
    line_count BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    paid_fen BIGINT
);

CREATE TABLE settlement_lines (
    batch_id TEXT NOT NULL REFERENCES settlement_batches(id),
    clause TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    beneficiary_role TEXT NOT NULL,
    beneficiary_name TEXT NOT NULL,
    uscc TEXT,
    owner_user_id TEXT,
    eligible TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    cap_fen BIGINT NOT NULL,
    decision TEXT NOT NULL,
    confirmation TEXT NOT NULL,
    confirmed_at BIGINT,
    paid_fen BIGINT,
    PRIMARY KEY (batch_id, clause, beneficiary)
);
CREATE INDEX settlement_lines_owner ON settlement_lines(owner_user_id);
