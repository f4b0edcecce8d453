#!/usr/bin/env bash
# Regenerate content.db.example: the example schema at the head of migrations/, with the demo
# data of scripts/demo-data.sql. Run it after adding a migration; the test
# `example_database_matches_migrations` fails until you do.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --quiet --release
./target/release/dbtool --database "$work/content.db" --migrations migrations --quiet init
sqlite3 -bail "$work/content.db" < scripts/demo-data.sql
sqlite3 "$work/content.db" 'PRAGMA foreign_key_check; VACUUM;' >/dev/null
mv "$work/content.db" content.db.example
echo "wrote content.db.example at $(./target/release/dbtool --database content.db.example current)"
