-- Integrity (issue 18). Source scope (item 4): the kinds a ledger source is registered to report
-- (a JSON array; outside sources report compute and data, M2.2). Price tables under platform
-- review (item 3): every row of a version carries its table's status, 'pending' until the
-- platform operator approves it; only approved tables price usage. Tables published before
-- review existed were in force, so they stay approved.
ALTER TABLE ledger_sources ADD COLUMN kinds TEXT NOT NULL DEFAULT '["compute.gpu_second","data.byte"]';
ALTER TABLE gateway_prices ADD COLUMN status TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE gateway_prices ADD COLUMN reviewed_by TEXT;
ALTER TABLE gateway_item_prices ADD COLUMN status TEXT NOT NULL DEFAULT 'approved';
ALTER TABLE gateway_item_prices ADD COLUMN reviewed_by TEXT;

-- Reference prices (item 3, M2.2): the platform operator's versioned list of vendors' public
-- list prices per model, fen per million tokens. The discount basis counts an operator's list
-- price at most up to the reference in force.
CREATE TABLE gateway_reference_prices (
    version TEXT NOT NULL,
    effective_from BIGINT NOT NULL,
    model TEXT NOT NULL,
    list_input BIGINT NOT NULL,
    list_cached BIGINT NOT NULL,
    list_output BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (version, model)
);
CREATE INDEX gateway_reference_prices_model ON gateway_reference_prices(model, effective_from);
