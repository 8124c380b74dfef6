-- Integrity decisions take two committee members (issue 18): the first proposes upholding or
-- dismissing a finding with a reason; it stays open (its lines held) until a different member
-- confirms the same decision. A different decision by another member replaces the proposal.
ALTER TABLE integrity_findings ADD COLUMN proposed_decision TEXT;
ALTER TABLE integrity_findings ADD COLUMN proposed_by TEXT;
ALTER TABLE integrity_findings ADD COLUMN proposed_reason TEXT;
ALTER TABLE integrity_findings ADD COLUMN proposed_at BIGINT;
