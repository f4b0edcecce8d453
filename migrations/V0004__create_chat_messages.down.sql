-- Undo V0004.
DROP INDEX idx_chat_messages_user_created;
DROP TABLE chat_messages;
