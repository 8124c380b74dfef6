-- Issue 18 item 1: a payout bank account number is no longer kept in clear. It is kept sealed
-- (XChaCha20-Poly1305 under a key derived from the platform's secret key, for finance's
-- export), as a keyed hash (two parties paid to one account compare equal) and as its last four
-- digits (what its owner is shown). `bank_account_number` holds only numbers recorded before
-- this migration, until `serve` seals them at start; it is then empty.
ALTER TABLE opcs ADD COLUMN bank_account_sealed TEXT;
ALTER TABLE opcs ADD COLUMN bank_account_hash TEXT;
ALTER TABLE opcs ADD COLUMN bank_account_tail TEXT;
ALTER TABLE communities ADD COLUMN bank_account_sealed TEXT;
ALTER TABLE communities ADD COLUMN bank_account_hash TEXT;
ALTER TABLE communities ADD COLUMN bank_account_tail TEXT;
ALTER TABLE enterprises ADD COLUMN bank_account_sealed TEXT;
ALTER TABLE enterprises ADD COLUMN bank_account_hash TEXT;
ALTER TABLE enterprises ADD COLUMN bank_account_tail TEXT;
CREATE INDEX opcs_bank_account_hash ON opcs(bank_account_hash);
CREATE INDEX communities_bank_account_hash ON communities(bank_account_hash);
CREATE INDEX enterprises_bank_account_hash ON enterprises(bank_account_hash);
