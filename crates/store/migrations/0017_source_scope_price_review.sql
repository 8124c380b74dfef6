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
