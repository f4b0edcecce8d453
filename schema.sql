CREATE TABLE oauth_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    platform      TEXT NOT NULL,
    access_token  TEXT NOT NULL,
    refresh_token TEXT,
    expires_at    TEXT,
    user_sub      TEXT NOT NULL,
    user_email    TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at    TEXT,
    UNIQUE (platform, user_sub)
);

CREATE TABLE "users" (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    linkedin_sub        TEXT NOT NULL UNIQUE,
    email               TEXT,
    name                TEXT NOT NULL,
    profile_picture_url TEXT,
    access_token        TEXT,
    refresh_token       TEXT,
    token_expires_at    TEXT,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    last_login_at       TEXT
, full_name TEXT NOT NULL);
CREATE INDEX idx_users_email ON users (email);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,  -- UUID
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    expires_at TEXT NOT NULL
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);
CREATE INDEX idx_sessions_expires_at ON sessions (expires_at);

CREATE TABLE chat_messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content    TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX idx_chat_messages_user_created ON chat_messages (user_id, created_at);

CREATE TABLE "posts" (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    content       TEXT NOT NULL,
    platform      TEXT NOT NULL DEFAULT 'linkedin',
    status        TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'scheduled', 'posted', 'failed')),
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
