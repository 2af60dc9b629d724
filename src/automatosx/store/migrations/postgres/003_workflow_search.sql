-- Full-text search over workflow name, description and tags: a generated tsvector (the
-- 'simple' configuration, so names and tags match as written) with a GIN index. Existing
-- rows get their vector when the column is added.

ALTER TABLE workflows ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig,
        name || ' ' || coalesce(description, '') || ' ' || tags::text)
) STORED;

CREATE INDEX workflows_search ON workflows USING GIN (search_vector);
