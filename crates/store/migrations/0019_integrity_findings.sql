-- Integrity findings (issue 18): what a scan of the paid-call graph found for a year — the
-- detector, the parties (a sorted JSON array), the skills, a score, the amount at stake, the
-- explanation in Chinese and English and the evidence rows (invoker, publisher, calls, fen). A
-- finding is `open` until the committee upholds or dismisses it with a reason; the flagged
-- parties may answer with a statement. `fingerprint` (year, detector, parties) keeps a rescan from
-- opening the same finding twice: it refreshes the numbers of an open one and leaves decided ones.
CREATE TABLE integrity_findings (
    id TEXT PRIMARY KEY,
    year BIGINT NOT NULL,
    detector TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    parties TEXT NOT NULL,
    skills TEXT NOT NULL,
    score_ppm BIGINT NOT NULL,
    amount_at_stake_fen BIGINT NOT NULL,
    explanation_zh TEXT NOT NULL,
    explanation_en TEXT NOT NULL,
    evidence TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    decision_reason TEXT,
    statement TEXT,
    statement_by TEXT,
    statement_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX integrity_findings_year ON integrity_findings(year, status);
