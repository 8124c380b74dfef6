-- Caps across claims (issue 6): what each (clause, beneficiary, cap scope, year or project)
-- has consumed. Settlement and approvals consume atomically; concurrent consumers can never
-- together exceed a cap. Every consumption is kept with a unique reference (idempotent).

CREATE TABLE cap_ledger (
    clause TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    scope TEXT NOT NULL,
    period_key TEXT NOT NULL,
    cap_fen BIGINT NOT NULL,
    consumed_fen BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (clause, beneficiary, scope, period_key)
);
CREATE INDEX cap_ledger_beneficiary ON cap_ledger(beneficiary, period_key);

CREATE TABLE cap_consumptions (
    reference TEXT PRIMARY KEY,
    clause TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    scope TEXT NOT NULL,
    period_key TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    actor TEXT,
    created_at BIGINT NOT NULL
);
