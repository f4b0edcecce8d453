-- V0003: content posts for every platform. `status` is an enum kept by a CHECK constraint,
-- the SQLite way; changing its values later needs a table rebuild (`dbtool create --rebuild`).
CREATE TABLE posts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    content       TEXT NOT NULL,
    platform      TEXT NOT NULL DEFAULT 'linkedin',
    status        TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'posted')),
    user_id       INTEGER REFERENCES users (id) ON DELETE CASCADE,
    is_demo       INTEGER NOT NULL DEFAULT 0 CHECK (is_demo IN (0, 1)),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at    TEXT,
    scheduled_at  TEXT,
    posted_at     TEXT,
    external_id   TEXT,
    error_message TEXT
);

CREATE INDEX idx_posts_user_status ON posts (user_id, status);
CREATE INDEX idx_posts_scheduled ON posts (scheduled_at) WHERE status = 'scheduled';
