-- Tollgate store, schema 1 (PostgreSQL). Keep in step with migrations/sqlite/0001_initial.sql.

-- The store's revision: bumped by exactly one for every committed change set.
CREATE TABLE store_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT  NOT NULL
);
INSERT INTO store_state (id, revision) VALUES (1, 0);

-- Every configuration object as a JSON document. Deleted objects stay as tombstones
-- (deleted = 1, body NULL) so that a reader can fetch what changed after a revision.
CREATE TABLE documents (
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    body       TEXT,
    revision   BIGINT  NOT NULL,
    deleted    BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX documents_by_revision ON documents (revision);

-- Append-only record of every write.
CREATE TABLE audit_log (
    id       BIGSERIAL PRIMARY KEY,
    revision BIGINT NOT NULL,
    at       BIGINT NOT NULL,
    actor    TEXT   NOT NULL,
    action   TEXT   NOT NULL,
    kind     TEXT   NOT NULL,
    key      TEXT   NOT NULL,
    before   TEXT,
    after    TEXT
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Admin API tokens: only a SHA-256 of the token is kept.
CREATE TABLE admin_tokens (
    id         TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL
);
