//! Where does a rebuild's time go? Runs a generated rebuild file on a copy of a database, step
//! by step as the executor does, and times each phase (wall and CPU seconds; each statement after
//! the copy on its own line). The copy is changed (committed).
//! `cargo run --release --example rebuild_phases -- COPY.db REBUILD.sql`
use std::time::Instant;

use dbtool::rebuild::{self, RebuildFile};
use rusqlite::Connection;

fn main() {
    let mut args = std::env::args().skip(1);
    let (db, file) = match (args.next(), args.next()) {
        (Some(d), Some(f)) => (d, f),
        _ => panic!("usage: rebuild_phases COPY.db REBUILD.sql"),
    };
    let sql = std::fs::read_to_string(file).unwrap();
    let parsed = RebuildFile::parse(&sql)
        .unwrap()
        .expect("a generated rebuild");
    let conn = Connection::open(db).unwrap();
    conn.pragma_update(None, "foreign_keys", false).unwrap();
    // CPU seconds of the whole process (every thread) beside wall seconds: the machine is shared.
    // /proc/self/stat fields 14 and 15 (after the parenthesised name): user and system ticks.
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
    };
    let mut t = (Instant::now(), cpu());
    let mut lap = |label: &str| {
        let now = cpu();
        println!(
            "{label:<44} {:>7.2} s wall {:>7.2} s cpu",
            t.0.elapsed().as_secs_f64(),
            now - t.1
        );
        t = (Instant::now(), now);
    };
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pre = rebuild::preflight(&conn, &parsed).unwrap();
    lap("preflight (schema, guard data checks)");
    conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |_| {
        Ok(())
    })
    .unwrap();
    lap("foreign_key_check before (not run by dbtool)");
    let statements: Vec<String> = dbtool::sql::split_statements(&sql)
        .into_iter()
        .map(|r| sql[r].to_string())
        .collect();
    let mut check = rebuild::CopyCheck::new(&conn, &parsed);
    let mut phase = "guard and new table";
    for s in &statements {
        let upper = s
            .trim_start_matches(|c: char| c.is_whitespace())
            .to_uppercase();
        let body = upper
            .lines()
            .find(|l| !l.trim_start().starts_with("--") && !l.trim().is_empty())
            .unwrap_or("")
            .to_string();
        let is_copy = body.starts_with("INSERT INTO") && body.contains("SELECT");
        if is_copy && phase.starts_with("guard") {
            lap(phase);
            phase = "copy (INSERT … SELECT)";
        }
        let is_drop = body.starts_with("DROP") && phase.starts_with("copy");
        if is_drop {
            lap(phase);
        }
        let ran = check.before_statement(s).unwrap();
        if is_drop {
            lap("copy proof (digest of the new rows)");
            phase = "drop, rename, indexes, triggers, views";
        }
        if let rebuild::Copied::Ran(outcome) = ran {
            // The copy, run by the check: it digests the old rows as it reads them.
            outcome.unwrap();
            continue;
        }
        conn.execute_batch(s).unwrap();
        if phase.starts_with("drop") {
            lap(&format!("  {}", body.chars().take(40).collect::<String>()));
        }
    }
    lap(phase);
    // As the executor does: a rebuild alone in its transaction, its foreign keys proven
    // unchanged, is not checked as the child.
    if check.foreign_keys_unchanged {
        dbtool::db::mark_foreign_keys_unchanged(&conn, std::path::Path::new("db"), &parsed.table)
            .unwrap();
    }
    dbtool::db::foreign_key_violations(&conn, std::path::Path::new("db")).unwrap();
    lap("foreign_key_check (after, as the write session runs it)");
    let post = rebuild::postcheck(&conn, &pre, check.proof).unwrap();
    lap("postcheck (views, ANALYZE)");
    conn.execute_batch("COMMIT").unwrap();
    lap("COMMIT");
    let file = std::path::Path::new(conn.path().unwrap()).to_path_buf();
    drop(conn);
    lap("close (checkpoint)");
    let c = Connection::open(&file).unwrap();
    let problems: String = c
        .query_row(
            &format!("PRAGMA integrity_check({})", parsed.table),
            [],
            |r| r.get(0),
        )
        .unwrap();
    lap(&format!(
        "for comparison: integrity_check of the table ({problems})"
    ));
    println!("proof: {:?}", post.copy);
}
