-- Monthly bills (对账单, issue 19 items 2 and 3). A month's bills are issued once its ledger
-- period is sealed: one row per (month, payer, payee) with its lines, written once and never
-- updated (the running bill of an open month is computed from the ledger, not stored).
-- bill_months records that a sealed month's bills were issued (exactly once).
CREATE TABLE bill_months (
    month TEXT PRIMARY KEY,
    tree_size BIGINT NOT NULL,
    bills BIGINT NOT NULL,
    issued_at BIGINT NOT NULL
);

CREATE TABLE bills (
    id TEXT PRIMARY KEY,
    month TEXT NOT NULL,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    list_fen BIGINT NOT NULL,
    total_fen BIGINT NOT NULL,
    events BIGINT NOT NULL,
    issued_at BIGINT NOT NULL,
    UNIQUE (month, payer, payee)
);
CREATE INDEX bills_payer ON bills(payer, month);
CREATE INDEX bills_payee ON bills(payee, month);

CREATE TABLE bill_lines (
    bill_id TEXT NOT NULL REFERENCES bills(id),
    line_no BIGINT NOT NULL,
    kind TEXT NOT NULL,
    item TEXT NOT NULL,
    price_version TEXT NOT NULL,
    unit TEXT NOT NULL,
    corrects_leaf_index BIGINT,
    quantity BIGINT NOT NULL,
    list_fen BIGINT NOT NULL,
    charged_fen BIGINT NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (bill_id, line_no)
);

-- Payments of issued bills: recorded by the payer (pending until the payee confirms) or a
-- receipt recorded by the payee (confirmed at once); either side may dispute a pending one.
-- A reference is used once per payee.
CREATE TABLE bill_payments (
    id TEXT PRIMARY KEY,
    bill_id TEXT NOT NULL REFERENCES bills(id),
    payee TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    paid_on TEXT NOT NULL,
    reference TEXT NOT NULL,
    note TEXT NOT NULL,
    status TEXT NOT NULL,
    recorded_side TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    confirmed_by TEXT,
    confirmed_at BIGINT,
    ledger_leaf_index BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (payee, reference)
);
CREATE INDEX bill_payments_bill ON bill_payments(bill_id);

CREATE TABLE bill_disputes (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES bill_payments(id),
    raised_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    resolution TEXT,
    resolution_note TEXT,
    resolved_by TEXT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT
);
