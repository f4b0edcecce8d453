//! Progress and interruption (issue 10): nothing but text when stderr is not a terminal or
//! `TERM=dumb`; Ctrl-C ends a running operation with exit 130, says what state the database is
//! in, and leaves it as it was.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Poll `done` until it holds (a hung test fails after a generous deadline); no fixed sleep
/// decides anything.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn no_escape_sequences_when_stderr_is_not_a_terminal() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db();
    env.ok(&["upgrade", "2"]);
    for args in [
        &["backup"][..],
        &["rehearse"],
        &["upgrade"],
        &["verify"],
        &["rebuild", "books", "--default", "title='x'"],
        &["backups", "verify"],
    ] {
        let run = env.ok(args);
        let all = [run.output.stdout.clone(), run.output.stderr.clone()].concat();
        assert!(
            !all.contains(&0x1b),
            "{args:?}: escape sequence in {:?}",
            run.stderr()
        );
        assert!(
            !all.contains(&b'\r'),
            "{args:?}: carriage return in {:?}",
            run.stderr()
        );
    }
}

/// `dbtool ARGS` on a pseudo-terminal (util-linux `script`), with `TERM` set; the captured output.
fn on_a_terminal(env: &TestEnv, term: &str, args: &str) -> Option<String> {
    let script = std::process::Command::new("script")
        .args(["-qec", &format!("{DBTOOL} {args}"), "/dev/null"])
        .current_dir(env.root())
        .env("HOME", env.root().join("home"))
        .env("TERM", term)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&script.stdout).into_owned())
}

#[test]
fn term_dumb_gets_no_progress_on_a_terminal() {
    let env = TestEnv::new();
    env.library_set();
    let Some(drawn) = on_a_terminal(&env, "xterm", "verify") else {
        eprintln!("no `script` to make a terminal: skipped");
        return;
    };
    assert!(
        drawn.contains("verifying the migrations"),
        "a terminal gets the spinner: {drawn:?}"
    );
    let dumb = on_a_terminal(&env, "dumb", "verify").unwrap();
    assert!(!dumb.contains("verifying the migrations"), "{dumb:?}");
    assert!(!dumb.contains('\x1b'), "{dumb:?}");
    assert!(dumb.contains("verify passed"), "{dumb:?}");
}

#[test]
fn ctrl_c_during_a_long_script_exits_130_and_changes_nothing() {
    let env = TestEnv::new();
    env.library_set();
    env.ok(&["init"]);
    // Never ends on its own: only the signal can stop it, whenever it arrives.
    env.write(
        "forever.sql",
        "CREATE TABLE big(x);\n\
         INSERT INTO big WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT i FROM c;\n",
    );
    let before = rows(
        &open(&env.db()),
        "SELECT name FROM sqlite_schema ORDER BY name",
    );
    let mut child = env
        .std_command()
        .args(["exec", "forever.sql"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The journal appears with the script's first write: the backup is done, the handler is
    // installed, the transaction is open.
    let journal = env.root().join("content.db-journal");
    wait_for("the script to start writing", || journal.exists());
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted: dbtool exec stopped"), "{err}");
    assert!(err.contains("nothing uncommitted is kept"), "{err}");
    // the next dbtool run rolls the unfinished transaction back: nothing of it remains
    env.ok(&["status", "--exit-code"]);
    assert_eq!(
        rows(
            &open(&env.db()),
            "SELECT name FROM sqlite_schema ORDER BY name"
        ),
        before
    );
    // the backup taken before the script is complete, and no temporary file is left
    let backups = env.ok(&["backups"]).stdout();
    assert!(backups.contains("before-exec"), "{backups}");
    let dir = env.ok(&["--json", "backups"]).json()["dir"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_library_reports_each_step_to_the_progress_callback() {
    let env = TestEnv::new();
    env.library_set();
    env.empty_db();
    let seen = std::cell::RefCell::new(Vec::new());
    let on_step = |step: &dbtool::migrate::StepReport, done: usize, total: usize| {
        seen.borrow_mut().push((step.version, done, total));
    };
    dbtool::Migrator::new(env.db(), env.migrations())
        .upgrade(
            dbtool::UpTarget::Head,
            &dbtool::RunOptions {
                on_step: Some(&on_step),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        seen.into_inner(),
        vec![(1, 1, 4), (2, 2, 4), (3, 3, 4), (4, 4, 4)]
    );
}
