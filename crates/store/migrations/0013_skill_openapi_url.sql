-- Skill Store (M2.3): an HTTP tool's OpenAPI document may be published by URL; the periodic
-- refresh re-fetches it from there and compares the canonical tool hash with the pinned one
-- (a rug pull, as for remote MCP servers). NULL for documents published inline.
ALTER TABLE skill_versions ADD COLUMN openapi_url TEXT;
