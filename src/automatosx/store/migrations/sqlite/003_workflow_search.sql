-- Full-text search over workflow name, description and tags (FTS5), kept in step with the
-- workflows table by triggers, and filled from the workflows stored before this version.

CREATE VIRTUAL TABLE workflows_fts USING fts5 (
    workflow_id UNINDEXED,
    name,
    description,
    tags,
    tokenize = 'unicode61'
);

INSERT INTO workflows_fts (workflow_id, name, description, tags)
SELECT id, name, COALESCE(description, ''),
       COALESCE((SELECT group_concat(value, ' ') FROM json_each(workflows.tags)), '')
FROM workflows;

CREATE TRIGGER workflows_fts_insert AFTER INSERT ON workflows
BEGIN
    INSERT INTO workflows_fts (workflow_id, name, description, tags)
    VALUES (NEW.id, NEW.name, COALESCE(NEW.description, ''),
            COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), ''));
END;

CREATE TRIGGER workflows_fts_update AFTER UPDATE OF name, description, tags ON workflows
BEGIN
    DELETE FROM workflows_fts WHERE workflow_id = OLD.id;
    INSERT INTO workflows_fts (workflow_id, name, description, tags)
    VALUES (NEW.id, NEW.name, COALESCE(NEW.description, ''),
            COALESCE((SELECT group_concat(value, ' ') FROM json_each(NEW.tags)), ''));
END;

CREATE TRIGGER workflows_fts_delete AFTER DELETE ON workflows
BEGIN
    DELETE FROM workflows_fts WHERE workflow_id = OLD.id;
END;
