-- A little demo data for content.db.example (loaded by scripts/make-example-db.sh).
-- users.full_name is NOT NULL since V0008 (a generated rebuild, after V0006's backfill).
INSERT INTO users (id, linkedin_sub, email, name, full_name, created_at, last_login_at) VALUES
    (1, 'li-ada', 'ada@example.com', 'Ada Lovelace', 'Ada Lovelace', '2026-01-05T09:00:00Z', '2026-11-20T08:30:00Z'),
    (2, 'li-grace', 'grace@example.com', 'Grace Hopper', 'Grace Hopper', '2026-02-11T14:20:00Z', '2026-11-19T17:05:00Z'),
    (3, 'li-edsger', NULL, 'Edsger Dijkstra', 'Edsger Dijkstra', '2026-03-02T07:45:00Z', NULL);

INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES
    ('5b1f0a9e-1c1d-4c61-9a53-0d1e6f0b7a01', 1, '2026-11-20T08:30:00Z', '2026-12-20T08:30:00Z'),
    ('0e7c2b44-8f57-4b0e-a1f6-2f3c9d8e5b02', 2, '2026-11-19T17:05:00Z', '2026-12-19T17:05:00Z');

INSERT INTO posts (id, content, platform, status, user_id, is_demo, created_at, scheduled_at, posted_at, external_id) VALUES
    (1, 'Shipping schema changes without losing a row.', 'linkedin', 'posted', 1, 1, '2026-11-01T10:00:00Z', NULL, '2026-11-01T12:00:00Z', 'urn:li:share:1001'),
    (2, 'Backups you never verified are wishes.', 'linkedin', 'scheduled', 1, 1, '2026-11-18T09:00:00Z', '2026-11-25T09:00:00Z', NULL, NULL),
    (3, 'Notes on structured programming, part 2.', 'linkedin', 'draft', 3, 1, '2026-11-19T16:00:00Z', NULL, NULL, NULL),
    (4, 'COBOL turns 67.', 'twitter', 'posted', 2, 1, '2026-10-30T08:00:00Z', NULL, '2026-10-30T08:05:00Z', '1850000000000000001');

INSERT INTO chat_messages (user_id, role, content, created_at) VALUES
    (1, 'user', 'Draft a post about safe migrations.', '2026-11-18T08:55:00Z'),
    (1, 'assistant', 'Here is a draft: Backups you never verified are wishes.', '2026-11-18T08:55:04Z'),
    (3, 'user', 'Summarise my essay on goto.', '2026-11-19T15:58:00Z');

INSERT INTO oauth_tokens (platform, access_token, refresh_token, expires_at, user_sub, user_email, created_at) VALUES
    ('linkedin', 'demo-access-token-ada', 'demo-refresh-token-ada', '2027-01-01T00:00:00Z', 'li-ada', 'ada@example.com', '2026-11-20T08:30:00Z'),
    ('twitter', 'demo-access-token-grace', NULL, '2026-12-01T00:00:00Z', 'tw-grace', 'grace@example.com', '2026-10-30T07:59:00Z');
