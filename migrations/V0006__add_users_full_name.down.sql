-- Undo V0006. The values live on in users.name, which they were copied from.
ALTER TABLE users DROP COLUMN full_name;
