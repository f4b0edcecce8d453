//! Where does `dbtool backup`'s time go? Times each stage of the pipeline on one database.
//! `cargo run --release --example backup_phases -- DB`
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use dbtool::backup::{MethodChoice, Snapshot};
use sha2::Digest;

fn main() {
    let db = std::env::args().nth(1).expect("usage: backup_phases DB");
    let db = Path::new(&db);
    let scratch = std::env::temp_dir();
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
    let time = |label: &str, f: &mut dyn FnMut()| {
        let (t, c) = (Instant::now(), cpu());
        f();
        println!(
            "{label:<48} {:>7.2} s wall {:>7.2} s cpu",
            t.elapsed().as_secs_f64(),
            cpu() - c
        );
    };
    let snap =
        || Snapshot::begin(db, MethodChoice::Dbpage, Duration::from_secs(5), &scratch).unwrap();
    time("dbpage read only", &mut || {
        snap().stream(&mut |_| Ok(())).unwrap();
    });
    time("dbpage read + xxh3-128 + xxh64", &mut || {
        let mut xxh3 = xxhash_rust::xxh3::Xxh3::new();
        let mut xxh64 = xxhash_rust::xxh64::Xxh64::new(0);
        snap()
            .stream(&mut |c| {
                xxh3.update(c);
                xxh64.update(c);
                Ok(())
            })
            .unwrap();
    });
    time("dbpage read + sha256 (format 1 computed it)", &mut || {
        let mut sha = sha2::Sha256::new();
        snap()
            .stream(&mut |c| {
                sha.update(c);
                Ok(())
            })
            .unwrap();
    });
    for threads in [0u32, 1, 2] {
        time(
            &format!("dbpage read + zstd -3 ({threads} workers)"),
            &mut || {
                let mut enc = zstd::stream::write::Encoder::new(std::io::sink(), 3).unwrap();
                if threads > 0 {
                    enc.multithread(threads).unwrap();
                }
                snap()
                    .stream(&mut |c| {
                        enc.write_all(c).unwrap();
                        Ok(())
                    })
                    .unwrap();
                enc.finish().unwrap();
            },
        );
    }
    for threads in [0u32, 2] {
        time(
            &format!("dbpage read + 1 MiB buffer + zstd -3 ({threads} workers)"),
            &mut || {
                let mut enc = zstd::stream::write::Encoder::new(std::io::sink(), 3).unwrap();
                if threads > 0 {
                    enc.multithread(threads).unwrap();
                }
                let mut buf = std::io::BufWriter::with_capacity(1 << 20, enc);
                snap()
                    .stream(&mut |c| {
                        buf.write_all(c).unwrap();
                        Ok(())
                    })
                    .unwrap();
                buf.into_inner().ok().unwrap().finish().unwrap();
            },
        );
    }
    // Restore, phase by phase, onto a copy of the database.
    let out = scratch.join("phases.db.zst");
    let _ = std::fs::remove_file(&out);
    let mut opts =
        dbtool::backup::CreateOptions::new(&scratch, "phases", time::OffsetDateTime::UNIX_EPOCH);
    opts.output = Some(out.clone());
    let t = Instant::now();
    let mut last = (None, Instant::now());
    let mut report = |p: dbtool::backup::Progress| {
        if last.0 != Some(p.phase) {
            if let Some(phase) = last.0 {
                println!("  {phase:?}: {:.2} s", last.1.elapsed().as_secs_f64());
            }
            last = (Some(p.phase), Instant::now());
        }
    };
    dbtool::backup::create(db, &opts, &mut report).unwrap();
    report(dbtool::backup::Progress {
        phase: dbtool::backup::Phase::Replace,
        done: 0,
        total: 0,
    });
    println!(
        "{:<40} {:>7.2} s",
        "create (all phases)",
        t.elapsed().as_secs_f64()
    );
    let target = scratch.join("phases-target.db");
    std::fs::copy(db, &target).unwrap();
    let ropts = dbtool::backup::RestoreOptions {
        force: true,
        safety_backup: None,
        check: dbtool::backup::CheckLevel::Quick,
        busy_timeout: Duration::from_secs(5),
    };
    let t = Instant::now();
    let mut last = (None, Instant::now());
    dbtool::backup::restore(&target, &out, &ropts, &mut |p| {
        if last.0 != Some(p.phase) {
            if let Some(phase) = last.0 {
                println!("  {phase:?}: {:.2} s", last.1.elapsed().as_secs_f64());
            }
            last = (Some(p.phase), Instant::now());
        }
    })
    .unwrap();
    println!("  {:?}: {:.2} s", last.0, last.1.elapsed().as_secs_f64());
    println!(
        "{:<40} {:>7.2} s",
        "restore (quick_check)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let conn = rusqlite::Connection::open(&target).unwrap();
    let _: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    println!(
        "{:<40} {:>7.2} s",
        "integrity_check alone",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let _: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    println!(
        "{:<40} {:>7.2} s",
        "quick_check alone",
        t.elapsed().as_secs_f64()
    );
    drop(conn);
    for f in [&out, &target] {
        let _ = std::fs::remove_file(f);
    }

    time("backup-api copy to temp + read", &mut || {
        Snapshot::begin(
            db,
            MethodChoice::BackupApi,
            Duration::from_secs(5),
            &scratch,
        )
        .unwrap()
        .stream(&mut |_| Ok(()))
        .unwrap();
    });
}
