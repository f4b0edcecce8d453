-- Undo V0001.
DROP INDEX idx_users_email;
DROP TABLE users;
