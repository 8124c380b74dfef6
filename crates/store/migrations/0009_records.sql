-- Records behind M6.3, M7 and M8.1 (issue 8): loans with drawdowns, interest paid and
-- repayments (the M6.3 monthly claims are generated from them); the talent-apartment inventory
-- and assignments (M7.2's schedule gives each month's rent due); growth milestones (M8.1).

CREATE TABLE loans (
    id TEXT PRIMARY KEY,
    opc_id TEXT NOT NULL,
    owner_user_id TEXT NOT NULL REFERENCES users(id),
    bank TEXT NOT NULL,
    contract_no TEXT NOT NULL,
    principal_fen BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (opc_id, contract_no)
);

-- kind: drawdown, interest (interest actually paid for `month`), repayment.
CREATE TABLE loan_entries (
    id TEXT PRIMARY KEY,
    loan_id TEXT NOT NULL REFERENCES loans(id),
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    month TEXT,
    amount_fen BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX loan_entries_loan ON loan_entries(loan_id, kind, day);
-- One interest statement per loan and month.
CREATE UNIQUE INDEX loan_interest_month ON loan_entries(loan_id, month);

CREATE TABLE apartments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    monthly_rent_fen BIGINT NOT NULL,
    daily_rent_fen BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE housing_assignments (
    id TEXT PRIMARY KEY,
    apartment_id TEXT NOT NULL REFERENCES apartments(id),
    application_id TEXT NOT NULL UNIQUE REFERENCES applications(id),
    opc_id TEXT NOT NULL,
    move_in TEXT NOT NULL,
    move_out TEXT,
    -- 1 while the apartment is occupied by this assignment; NULL after move-out. The unique
    -- index lets an apartment have one occupant at a time, also under concurrent assignment.
    active BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX housing_one_occupant ON housing_assignments(apartment_id, active);

CREATE TABLE milestones (
    id TEXT PRIMARY KEY,
    opc_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    day TEXT NOT NULL,
    application_id TEXT NOT NULL UNIQUE REFERENCES applications(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX milestones_opc ON milestones(opc_id);
