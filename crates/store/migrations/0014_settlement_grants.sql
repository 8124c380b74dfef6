-- Every yuan once (issue 17). What each settlement key — (clause, beneficiary, year, cap scope) —
-- was granted and paid; batch lines become differences against it; a second signature approves;
-- finance pays lines with a bank reference each; lowered paid keys become recovery orders.

-- The key's account: approvals move `approved_fen` to the year-to-date entitlement, payments add
-- to `paid_fen`, recovery orders to `recovery_fen`. `version` makes every change conditional, so
-- two replicas approving at once cannot both pay the same difference.
CREATE TABLE settlement_grants (
    clause TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    year BIGINT NOT NULL,
    scope_key TEXT NOT NULL,
    approved_fen BIGINT NOT NULL,
    paid_fen BIGINT NOT NULL,
    recovery_fen BIGINT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (clause, beneficiary, year, scope_key)
);

-- A batch: the confirmation deadline (意愿确认 window), what the draft was based on (policy
-- version, exclusion lists, ledger corrections and findings — approval refuses a stale draft),
-- what approval granted, and when finance finished paying.
ALTER TABLE settlement_batches ADD COLUMN confirm_until_ms BIGINT;
ALTER TABLE settlement_batches ADD COLUMN basis_mark TEXT;
ALTER TABLE settlement_batches ADD COLUMN approved_fen BIGINT;
ALTER TABLE settlement_batches ADD COLUMN recovery_fen BIGINT;
ALTER TABLE settlement_batches ADD COLUMN paid_at BIGINT;

-- A line: the year-to-date entitlement, what was approved for the key before the draft; its
-- `amount_fen` is now the difference (negative = lowered). Approval records what it granted
-- (`approved_fen`), finance what it paid (`paid_fen`, which was set at approval before), with
-- what was offset, the bank reference, the payer and the date.
ALTER TABLE settlement_lines ADD COLUMN entitlement_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlement_lines ADD COLUMN prior_fen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE settlement_lines ADD COLUMN approved_fen BIGINT;
ALTER TABLE settlement_lines ADD COLUMN offset_fen BIGINT;
ALTER TABLE settlement_lines ADD COLUMN payment_reference TEXT;
ALTER TABLE settlement_lines ADD COLUMN paid_by TEXT;
ALTER TABLE settlement_lines ADD COLUMN paid_at BIGINT;
ALTER TABLE settlement_lines ADD COLUMN lapse_reason TEXT;

-- A lowered key that had been paid beyond its new entitlement (F2, S5): repaid by the
-- beneficiary or offset against its next payments, settlement or application.
CREATE TABLE settlement_recoveries (
    id TEXT PRIMARY KEY,
    clause TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    year BIGINT NOT NULL,
    scope_key TEXT NOT NULL,
    batch_id TEXT NOT NULL REFERENCES settlement_batches(id),
    reason TEXT NOT NULL,
    approved_before_fen BIGINT NOT NULL,
    entitlement_fen BIGINT NOT NULL,
    paid_before_fen BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    settled_fen BIGINT NOT NULL,
    status TEXT NOT NULL,
    due_on TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX settlement_recoveries_beneficiary ON settlement_recoveries(beneficiary, status);

CREATE TABLE settlement_recovery_entries (
    id TEXT PRIMARY KEY,
    recovery_id TEXT NOT NULL REFERENCES settlement_recoveries(id),
    kind TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    recorded_by TEXT,
    at BIGINT NOT NULL
);
