-- Skill calls are charged like model calls (issue 19 item 1): a key's limits also name the
-- skills it may call (a JSON array of slugs; empty = every skill the owner enabled).
ALTER TABLE gateway_key_limits ADD COLUMN allowed_skills TEXT NOT NULL DEFAULT '[]';
