//! Ctrl-C (SIGINT): end the progress line, remove this process's temporary files, say that the
//! operation was interrupted and what state the database is in, exit 130 (128 + SIGINT, as shells
//! report it).
//!
//! Why exiting is safe: every change dbtool makes runs in a SQLite transaction that commits only
//! at the end (a `-- dbtool:no-transaction` migration is a commit boundary). A process that exits
//! before COMMIT leaves nothing committed: SQLite rolls the unfinished transaction back, from the
//! journal, on the next open. Backups are written under temporary names and linked into place
//! only when complete; the temporary files are removed here (and by the next run otherwise).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use indicatif::ProgressBar;

/// What the handler needs to know about the running command.
struct Running {
    command: &'static str,
    /// Whether the command can change the database.
    writes: bool,
    database: PathBuf,
    /// A SQLite file (else a PostgreSQL URL, redacted).
    database_is_file: bool,
    /// Folders where this process may have temporary files (`.dbtool-<kind>-<pid>-<n>.tmp`).
    temp_dirs: Vec<PathBuf>,
}

static RUNNING: Mutex<Option<Running>> = Mutex::new(None);
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Install the handler (once, at start-up). A failure to install only loses the message.
pub fn install() {
    let _ = ctrlc::set_handler(on_interrupt);
}

/// Record the command about to run.
pub fn running(
    command: &'static str,
    writes: bool,
    database: &Path,
    database_is_file: bool,
    backup_dir: &Path,
) {
    let mut temp_dirs = vec![backup_dir.to_path_buf()];
    if let Some(parent) = database.parent().filter(|_| database_is_file) {
        temp_dirs.push(parent.to_path_buf());
    }
    temp_dirs.push(std::env::temp_dir());
    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
        command,
        writes,
        database: database.to_path_buf(),
        database_is_file,
        temp_dirs,
    });
}

pub fn register_bar(bar: &ProgressBar) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
}

pub fn unregister_bar() {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn on_interrupt() {
    if let Some(bar) = BAR.lock().unwrap_or_else(|e| e.into_inner()).take() {
        bar.finish_and_clear();
    }
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(running) = running else {
        eprintln!("interrupted");
        std::process::exit(130);
    };
    let removed = remove_temporary_files(&running.temp_dirs);
    let db = running.database.display();
    eprintln!("interrupted: dbtool {} stopped", running.command);
    if running.writes {
        let who = if running.database_is_file {
            "SQLite rolls the unfinished transaction back when the database is next opened"
        } else {
            "the server rolls the unfinished transaction back as the connection closes"
        };
        eprintln!(
            "  {db}: nothing uncommitted is kept ({who}); a plan with a `-- dbtool:no-transaction` migration keeps the steps it had committed"
        );
        eprintln!("  hint: `dbtool status` shows where the database stands");
    } else {
        eprintln!("  {db} was not changed");
    }
    if removed > 0 {
        eprintln!("  removed {removed} temporary file(s)");
    }
    std::process::exit(130);
}

/// Remove this process's temporary files and folders: `.dbtool-*-<pid>-*.tmp` (backups,
/// snapshots), `*.dbtool-reset.tmp` is left to `reset`'s next run (it owns no pid), and
/// `dbtool-<purpose>-<pid>-*` scratch folders (rehearsals).
fn remove_temporary_files(dirs: &[PathBuf]) -> usize {
    let pid = format!("-{}-", std::process::id());
    let mut removed = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let mine_file =
                name.starts_with(".dbtool-") && name.ends_with(".tmp") && name.contains(&pid);
            let mine_dir = name.starts_with("dbtool-") && name.contains(&pid) && path.is_dir();
            let gone = if mine_file {
                std::fs::remove_file(&path).is_ok()
            } else if mine_dir {
                std::fs::remove_dir_all(&path).is_ok()
            } else {
                false
            };
            removed += usize::from(gone);
        }
    }
    removed
}
