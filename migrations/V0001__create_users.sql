-- V0001: users of the content app (LinkedIn OAuth sign-in).
CREATE TABLE users (
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
);

CREATE INDEX idx_users_email ON users (email);
