-- A bill payment's optional receipt file (issue 19 item 3): kept in the file table by its
-- SHA-256, read by the bill's two parties, the committee and the auditor.
ALTER TABLE bill_payments ADD COLUMN receipt_sha256 TEXT;
ALTER TABLE bill_payments ADD COLUMN receipt_name TEXT;
CREATE INDEX bill_payments_receipt ON bill_payments(receipt_sha256);
