-- Undo V0003.
DROP INDEX idx_posts_scheduled;
DROP INDEX idx_posts_user_status;
DROP TABLE posts;
