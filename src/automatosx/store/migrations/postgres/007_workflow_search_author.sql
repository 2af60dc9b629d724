-- Full-text search covers the author too (`ax workflow list --search`), each field weighted
-- for ts_rank (name A, tags B, author C, description D), and reads text as SQLite's FTS5
-- does: punctuation separates words, so the default parser's e-mail, host, URL, path and
-- hyphenated tokens ("alice@example.com" as one lexeme) do not hide the words inside them.
-- Tags are read as JSON strings (the stored text escapes non-ASCII letters as \uXXXX). Each
-- field is bounded (a tsvector holds at most 1 MB). The function calls only built-ins, so
-- the generated column does not depend on the search path. The column replaces version 3's
-- and is computed for the rows already stored.

CREATE FUNCTION workflow_search_vector(
    w_name TEXT, w_description TEXT, w_author TEXT, w_tags JSON
) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple'::regconfig, f.name), 'A')
        || setweight(to_tsvector('simple'::regconfig, f.tags), 'B')
        || setweight(to_tsvector('simple'::regconfig, f.author), 'C')
        || setweight(to_tsvector('simple'::regconfig, f.description), 'D')
    FROM (
        SELECT regexp_replace(left(coalesce(v.name, ''), 100000), v.separators, ' ', 'g') AS name,
               regexp_replace(left(coalesce(v.tags, ''), 100000), v.separators, ' ', 'g') AS tags,
               regexp_replace(left(coalesce(v.author, ''), 100000), v.separators, ' ', 'g')
                   AS author,
               regexp_replace(left(coalesce(v.description, ''), 100000), v.separators, ' ', 'g')
                   AS description
        FROM (
            SELECT w_name AS name, w_description AS description, w_author AS author,
                   CASE WHEN json_typeof(w_tags) = 'array' THEN
                       (SELECT string_agg(t, ' ') FROM json_array_elements_text(w_tags) AS t)
                   END AS tags,
                   '[[:punct:][:space:][:cntrl:]]+' AS separators
        ) AS v
    ) AS f
$$;

ALTER TABLE workflows DROP COLUMN search_vector;

ALTER TABLE workflows ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    workflow_search_vector(name, description, author, tags)
) STORED;

CREATE INDEX workflows_search ON workflows USING GIN (search_vector);
