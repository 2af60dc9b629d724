-- Full-text search covers the author too (`ax workflow list --search`), and keeps accents as
-- written (café is not cafe), as PostgreSQL's 'simple' configuration does, so both stores
-- find the same workflows. The store ranks with bm25, name weighing most, then tags, author
-- and description (the column order here: workflow_id, name, description, tags, author).
-- The index is rebuilt from the workflows table.

DROP TRIGGER workflows_fts_insert;
DROP TRIGGER workflows_fts_update;
DROP TRIGGER workflows_fts_delete;
DROP TABLE workflows_fts;

CREATE VIRTUAL TABLE workflows_fts USING fts5 (
    workflow_id UNINDEXED,
    name,
    description,
    tags,
    author,
    tokenize = 'unicode61 remove_diacritics 0'
);

INSERT INTO workflows_fts (workflow_id, name, description, tags, author)
SELECT id, name, COALESCE(description, ''),
       COALESCE((SELECT group_concat(value, ' ') FROM json_each(workflows.tags)), ''),
       COALESCE(author, '')
FROM workflows;

CREATE TRIGGER workflows_fts_insert AFTER INSERT ON workflows
BEGIN
    INSERT INTO workflows_fts (workflow_id, name, description, tags, author)
    VALUES (NEW.id, NEW.name, COALESCE(NEW.description, ''),
            COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), ''),
            COALESCE(NEW.author, ''));
END;

CREATE TRIGGER workflows_fts_update AFTER UPDATE OF name, description, author, tags ON workflows
BEGIN
    DELETE FROM workflows_fts WHERE workflow_id = OLD.id;
    INSERT INTO workflows_fts (workflow_id, name, description, tags, author)
    VALUES (NEW.id, NEW.name, COALESCE(NEW.description, ''),
            COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), ''),
            COALESCE(NEW.author, ''));
END;

CREATE TRIGGER workflows_fts_delete AFTER DELETE ON workflows
BEGIN
    DELETE FROM workflows_fts WHERE workflow_id = OLD.id;
END;
