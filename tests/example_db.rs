//! `content.db.example` must be the example schema at the head of `migrations/`: regenerate it
//! with `scripts/make-example-db.sh` when this fails.

use std::path::Path;

use dbtool::Migrator;

fn schema(path: &Path) -> Vec<(String, String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn example_database_matches_migrations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("content.db.example");
    let migrations = root.join("migrations");
    let hint = "content.db.example is out of date: run scripts/make-example-db.sh";

    let status = Migrator::new(&example, &migrations).status().unwrap();
    assert!(
        status.pending.is_empty(),
        "{hint}: pending {:?}",
        status.pending
    );
    assert!(status.problems.is_empty(), "{hint}: {:?}", status.problems);
    assert_eq!(status.current, status.head, "{hint}");

    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.db");
    Migrator::new(&fresh, &migrations)
        .init(&Default::default())
        .unwrap();
    assert_eq!(schema(&example), schema(&fresh), "{hint}");

    let conn = rusqlite::Connection::open(&example).unwrap();
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(users > 0, "the example database should carry demo data");
}
