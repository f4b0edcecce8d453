-- Undo V0005.
DROP TABLE oauth_tokens;
