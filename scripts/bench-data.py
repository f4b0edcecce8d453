#!/usr/bin/env python3
"""Generate a WAL-mode SQLite database of realistic rows for scripts/bench-backup.sh.

Usage: bench-data.py DB SIZE_MIB SCHEMA_DB
SCHEMA_DB is a database at head of migrations/ (its schema is copied). Text is built from a
fixed vocabulary with a skewed word distribution, so it compresses like prose (about 3-4x);
tokens and ids are random hex, which does not compress. Deterministic (fixed seed).
"""
import os
import random
import sqlite3
import sys

db, size_mib, schema_db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
letters = "etaoinshrdlcumwfgypbvkjxqz"
vocab = ["".join(rng.choices(letters, weights=range(26, 0, -1), k=rng.randint(2, 10)))
         for _ in range(3000)]
cum_weights = []
total = 0.0
for i in range(len(vocab)):
    total += 1.0 / (i + 1)
    cum_weights.append(total)


def sentence(n):
    words = rng.choices(vocab, cum_weights=cum_weights, k=n)
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!"])


def paragraph():
    return " ".join(sentence(rng.randint(6, 20)) for _ in range(rng.randint(2, 8)))


def ts(i):
    return "2024-%02d-%02dT%02d:%02d:%02dZ" % (1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60)


if os.path.exists(db):
    os.remove(db)
src = sqlite3.connect(schema_db)
schema = [r[0] for r in src.execute(
    "SELECT sql FROM sqlite_schema WHERE sql NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
history = src.execute("SELECT * FROM refinery_schema_history").fetchall()
src.close()

conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode=WAL")
for sql in schema:
    conn.execute(sql)
conn.executemany("INSERT INTO refinery_schema_history VALUES (?,?,?,?)", history)
conn.commit()

target = size_mib * 1024 * 1024
users = 20000
conn.executemany(
    "INSERT INTO users(linkedin_sub, email, name, full_name, access_token, refresh_token, created_at)"
    " VALUES (?,?,?,?,?,?,?)",
    ((f"sub-{i}", f"user{i}@example.com", f"User {i}", f"User Number {i}",
      rng.randbytes(48).hex(), rng.randbytes(32).hex(), ts(i)) for i in range(users)))
conn.commit()

i = 0
while True:
    batch = []
    for _ in range(5000):
        i += 1
        batch.append(i)
    conn.executemany(
        "INSERT INTO posts(content, status, user_id, created_at, scheduled_at, external_id)"
        " VALUES (?,?,?,?,?,?)",
        ((paragraph(), rng.choice(["draft", "scheduled", "posted"]), 1 + n % users, ts(n),
          ts(n + 3), rng.randbytes(8).hex()) for n in batch))
    conn.executemany(
        "INSERT INTO chat_messages(user_id, role, content, created_at) VALUES (?,?,?,?)",
        ((1 + n % users, rng.choice(["user", "assistant"]), paragraph(), ts(n)) for n in batch))
    conn.commit()
    size = os.path.getsize(db) + (os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
    if size >= target:
        break
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.close()
print(f"{db}: {os.path.getsize(db) / 1048576:.0f} MiB, {i} posts and {i} chat messages")
