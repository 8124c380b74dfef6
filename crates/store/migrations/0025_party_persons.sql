-- Who is who (issue 18 item 1): the people behind a party — an OPC's founder and beneficial
-- owners, an enterprise's beneficial owners, a community company's controlling persons. A
-- person is recorded by name, role and keyed hashes of the resident ID number and the phone
-- (HMAC under the platform's secret key; the numbers themselves are never stored). Two parties
-- sharing a person, a phone or a payout bank account are related: their dealings do not count
-- as subsidy basis in any clause (M2.2 operator and OPC, M2.3 invoker and publisher, M2.4
-- enterprise and OPC).
CREATE TABLE party_persons (
    id TEXT PRIMARY KEY,
    party_kind TEXT NOT NULL,
    party_id TEXT NOT NULL,
    role TEXT NOT NULL,
    display_name TEXT NOT NULL,
    id_hash TEXT NOT NULL,
    phone_hash TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE UNIQUE INDEX uq_party_persons_party_person ON party_persons (party_id, id_hash);
CREATE INDEX ix_party_persons_id_hash ON party_persons (id_hash);
CREATE INDEX ix_party_persons_phone_hash ON party_persons (phone_hash);
