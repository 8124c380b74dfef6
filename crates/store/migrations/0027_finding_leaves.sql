-- Findings name the ledger events they rest on (issue 18 item 5): the leaf indices (the first
-- 100, in leaf order) and how many there are in all, so the committee and the auditor can
-- prove each one against a signed checkpoint.
ALTER TABLE integrity_findings ADD COLUMN leaves TEXT NOT NULL DEFAULT '[]';
ALTER TABLE integrity_findings ADD COLUMN leaves_total BIGINT NOT NULL DEFAULT 0;
