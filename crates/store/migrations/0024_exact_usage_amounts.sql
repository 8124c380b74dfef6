-- Issue 17 item 6: usage money stays exact until the one rounding of a line. A token event
-- keeps its list and charged amount rounded half-up to the fen (as before) and what that
-- rounding left, in millionths of a fen (exact − fen × 10⁶); rollups add both, so statements,
-- bills and settlement round once per line instead of once per request. Whole-fen events
-- (every kind but tokens, and every event stored before) have 0.
ALTER TABLE ledger_events ADD COLUMN list_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_events ADD COLUMN charged_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN list_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN charged_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN uq_list_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups ADD COLUMN uq_charged_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups_monthly ADD COLUMN list_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups_monthly ADD COLUMN charged_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups_monthly ADD COLUMN uq_list_sub_micro BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ledger_rollups_monthly ADD COLUMN uq_charged_sub_micro BIGINT NOT NULL DEFAULT 0;
