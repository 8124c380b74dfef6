-- F3: the catalogue of prohibited and restricted industries is matched by industry code
-- (GB/T 4754-2017, normalised: section letter + 0/2/3/4 digits, e.g. I6513). Every kind of
-- beneficiary records its main industry; NULL means not known yet (the F3 fact stays unknown
-- when a catalogue by code is in force).
ALTER TABLE opcs ADD COLUMN industry_code TEXT;
ALTER TABLE communities ADD COLUMN industry_code TEXT;
ALTER TABLE enterprises ADD COLUMN industry_code TEXT;

-- A list entry names a company by USCC, or (restricted-industry catalogue) an industry code;
-- entries by code keep uscc empty.
ALTER TABLE exclusion_entries ADD COLUMN industry_code TEXT;

-- M2.3 free calls: qualified events with nothing charged, counted per event (before, a day's
-- row counted as free only when nothing at all was charged that day; the backfill keeps that
-- reading for existing rows).
ALTER TABLE ledger_rollups ADD COLUMN free_events BIGINT NOT NULL DEFAULT 0;
UPDATE ledger_rollups SET free_events = CASE WHEN charged_fen = 0 THEN events - uq_events ELSE 0 END;

-- Monthly rollups, kept in the same transaction as the daily ones (and the events), so that a
-- settlement of a year reads one row per (month, pair, kind) instead of grouping every day.
-- first_day: the first day of the month with usage (settlement re-reads a month by day when a
-- registration day or the validity window falls inside it).
CREATE TABLE ledger_rollups_monthly (
    month TEXT NOT NULL,
    subject TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    first_day TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    list_fen BIGINT NOT NULL,
    charged_fen BIGINT NOT NULL,
    events BIGINT NOT NULL,
    uq_quantity BIGINT NOT NULL,
    uq_list_fen BIGINT NOT NULL,
    uq_charged_fen BIGINT NOT NULL,
    uq_events BIGINT NOT NULL,
    free_events BIGINT NOT NULL,
    PRIMARY KEY (kind, month, subject, counterparty, unit)
);
INSERT INTO ledger_rollups_monthly (month, subject, counterparty, kind, unit, first_day, quantity, list_fen, charged_fen, events,
    uq_quantity, uq_list_fen, uq_charged_fen, uq_events, free_events)
SELECT substr(day, 1, 7), subject, counterparty, kind, unit, MIN(day), SUM(quantity), SUM(list_fen), SUM(charged_fen), SUM(events),
    SUM(uq_quantity), SUM(uq_list_fen), SUM(uq_charged_fen), SUM(uq_events), SUM(free_events)
FROM ledger_rollups GROUP BY substr(day, 1, 7), subject, counterparty, kind, unit;
-- One beneficiary's usage (the policy calculator) without reading everyone's.
CREATE INDEX ledger_rollups_monthly_subject ON ledger_rollups_monthly(subject, kind, month);
CREATE INDEX ledger_rollups_monthly_counterparty ON ledger_rollups_monthly(counterparty, kind, month);
