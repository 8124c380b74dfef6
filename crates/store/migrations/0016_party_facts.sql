-- Party facts every deployment can set (issue 17): G2 market registration of a community's
-- company and of a district enterprise (a company on the platform has a USCC, which is issued at
-- market registration, so rows start registered; the committee or the platform operator records
-- a deregistration); M2.4's "in the district" for an enterprise (created by the platform operator
-- as a district enterprise; may be corrected); and the bank account a beneficiary is paid to
-- (account name, bank, account number), set by the beneficiary's owner and shown to finance.
ALTER TABLE communities ADD COLUMN market_registered BIGINT NOT NULL DEFAULT 1;
ALTER TABLE enterprises ADD COLUMN market_registered BIGINT NOT NULL DEFAULT 1;
ALTER TABLE enterprises ADD COLUMN in_district BIGINT NOT NULL DEFAULT 1;

ALTER TABLE opcs ADD COLUMN bank_account_name TEXT;
ALTER TABLE opcs ADD COLUMN bank_name TEXT;
ALTER TABLE opcs ADD COLUMN bank_account_number TEXT;
ALTER TABLE communities ADD COLUMN bank_account_name TEXT;
ALTER TABLE communities ADD COLUMN bank_name TEXT;
ALTER TABLE communities ADD COLUMN bank_account_number TEXT;
ALTER TABLE enterprises ADD COLUMN bank_account_name TEXT;
ALTER TABLE enterprises ADD COLUMN bank_name TEXT;
ALTER TABLE enterprises ADD COLUMN bank_account_number TEXT;
