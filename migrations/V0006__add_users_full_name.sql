-- V0006: a data migration. Add users.full_name and fill it from name; a later migration makes
-- it NOT NULL once every row has a value.
ALTER TABLE users ADD COLUMN full_name TEXT;

UPDATE users SET full_name = name WHERE full_name IS NULL;
