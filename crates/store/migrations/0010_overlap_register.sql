-- S3 register (issue 6): each grant from another policy names its level (national, municipal,
-- district, other) and the item it paid for (an invoice or contract number). The same item of
-- the same overlap group can be recorded once: a second record is a likely double claim.
ALTER TABLE overlap_grants ADD COLUMN level TEXT NOT NULL DEFAULT 'other';
ALTER TABLE overlap_grants ADD COLUMN item_key TEXT;
CREATE UNIQUE INDEX overlap_grants_item ON overlap_grants(overlap_group, item_key);
