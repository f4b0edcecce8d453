//! Where output goes. stdout carries the command's result (human text or `--json`); errors and
//! progress go to stderr; `--quiet` silences everything but errors and JSON. A closed stdout
//! (`dbtool history | head`) ends the process quietly.

use std::io::{IsTerminal, Write};
use std::path::Path;

pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub cwd: std::path::PathBuf,
}

impl Output {
    /// A line of the result, on stdout (suppressed by `--quiet`).
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.quiet {
            write_stdout(text.as_ref());
        }
    }

    /// A note about what happened (backup skipped, nothing to do), on stderr.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", text.as_ref());
        }
    }

    /// The report as pretty JSON on stdout.
    pub fn json<T: serde::Serialize>(&self, value: &T) {
        let text = serde_json::to_string_pretty(value).expect("reports always serialise");
        write_stdout(&text);
    }

    /// A path as the user would type it: relative to the current folder when it is inside it.
    pub fn path(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Whether stdin and stderr are a terminal (prompts and progress bars).
    #[allow(dead_code)] // used by the commands that ask (reset, restore)
    pub fn interactive(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
}

fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{text}").and_then(|_| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}
