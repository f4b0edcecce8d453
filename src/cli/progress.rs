//! A one-line progress display on stderr: bytes, rate, ETA. Drawn only when stderr is a terminal
//! and `--quiet` is off, and only once an operation has run for a second (short ones stay
//! silent). Piped output never sees a carriage return.

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use dbtool::backup::{Phase, Progress};

use super::Output;

pub struct ProgressLine {
    enabled: bool,
    start: Instant,
    last_draw: Cell<Option<Instant>>,
    phase: RefCell<Option<(Phase, Instant)>>,
    drawn: Cell<bool>,
}

impl ProgressLine {
    pub fn new(out: &Output) -> Self {
        ProgressLine {
            enabled: !out.quiet && std::io::stderr().is_terminal(),
            start: Instant::now(),
            last_draw: Cell::new(None),
            phase: RefCell::new(None),
            drawn: Cell::new(false),
        }
    }

    pub fn update(&self, p: Progress) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let phase_start = {
            let mut phase = self.phase.borrow_mut();
            match *phase {
                Some((current, since)) if current == p.phase => since,
                _ => {
                    *phase = Some((p.phase, now));
                    now
                }
            }
        };
        if now.duration_since(self.start) < Duration::from_secs(1) {
            return;
        }
        if let Some(last) = self.last_draw.get() {
            if now.duration_since(last) < Duration::from_millis(100) && p.done < p.total {
                return;
            }
        }
        self.last_draw.set(Some(now));
        let label = match p.phase {
            Phase::Backup => "backing up",
            Phase::ReadBack => "verifying backup",
            Phase::Decompress => "decompressing",
            Phase::IntegrityCheck => "integrity check",
            Phase::Replace => "replacing database",
        };
        let line = if p.total > 1 {
            let secs = now.duration_since(phase_start).as_secs_f64().max(1e-3);
            let rate = p.done as f64 / secs;
            let eta = if rate > 0.0 {
                (p.total.saturating_sub(p.done)) as f64 / rate
            } else {
                0.0
            };
            format!(
                "{label}: {:.1}/{:.1} MiB  {:.0} MiB/s  ETA {:.0}s",
                mib(p.done),
                mib(p.total),
                rate / 1048576.0,
                eta
            )
        } else {
            format!("{label}…")
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn.set(true);
    }

    /// Clear the line before normal output continues.
    pub fn finish(&self) {
        if self.drawn.replace(false) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
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
