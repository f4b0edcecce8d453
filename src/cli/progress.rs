//! Progress on stderr, drawn by indicatif: a byte bar (rate, ETA) for backups and restores, a
//! spinner for the phases the library reports no byte counts for (applying migrations,
//! rehearsing, verifying). Drawn only when stderr is a terminal, `TERM` is not `dumb` and
//! `--quiet` is off; byte bars appear only once an operation has run for a second (short ones
//! stay silent). Anywhere else nothing is drawn: no carriage return, no escape sequence.
//!
//! The bar being drawn is registered with [`super::interrupt`], so Ctrl-C can end its line before
//! saying what happened.

use std::cell::{Cell, RefCell};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use dbtool::backup::{Phase, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{interrupt, Output};

/// Whether progress may be drawn: stderr is a terminal that understands escapes, not `--quiet`.
pub fn enabled(out: &Output) -> bool {
    !out.quiet
        && std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// A byte-progress bar for one operation with phases (backup, read-back, restore…).
pub struct ProgressLine {
    enabled: bool,
    start: Instant,
    bar: RefCell<Option<ProgressBar>>,
    phase: Cell<Option<Phase>>,
}

impl ProgressLine {
    pub fn new(out: &Output) -> Self {
        ProgressLine {
            enabled: enabled(out),
            start: Instant::now(),
            bar: RefCell::new(None),
            phase: Cell::new(None),
        }
    }

    pub fn update(&self, p: Progress) {
        if !self.enabled || self.start.elapsed() < Duration::from_secs(1) {
            return;
        }
        let mut slot = self.bar.borrow_mut();
        let bar = slot.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::stderr());
            interrupt::register_bar(&bar);
            bar
        });
        if self.phase.get() != Some(p.phase) {
            self.phase.set(Some(p.phase));
            bar.reset();
            bar.set_length(p.total);
            bar.set_style(if p.total > 1 {
                ProgressStyle::with_template(
                    "{msg}: {bytes}/{total_bytes}  {binary_bytes_per_sec}  ETA {eta}",
                )
                .expect("valid template")
            } else {
                ProgressStyle::with_template("{msg}…").expect("valid template")
            });
            bar.set_message(label(p.phase));
        }
        bar.set_position(p.done);
    }

    /// Clear the line before normal output continues.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            bar.finish_and_clear();
            interrupt::unregister_bar();
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

fn label(phase: Phase) -> &'static str {
    match phase {
        Phase::Backup => "backing up",
        Phase::ReadBack => "verifying backup",
        Phase::Decompress => "decompressing",
        Phase::IntegrityCheck => "integrity check",
        Phase::Replace => "replacing database",
    }
}

/// A spinner with a message and the elapsed time, for work without byte counts; cleared when
/// dropped.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// Replace the message (the step being worked on).
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(bar) = &self.0 {
            bar.set_message(message.into());
        }
    }

    pub fn start(out: &Output, message: impl Into<String>) -> Spinner {
        if !enabled(out) {
            return Spinner(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        interrupt::register_bar(&bar);
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
            interrupt::unregister_bar();
        }
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// "412.3 MiB", "12.0 KiB".
pub fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", mib(bytes))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
