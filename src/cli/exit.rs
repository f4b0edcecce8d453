//! Exit statuses: a public contract for scripts. Documented in `--help` and the README; never
//! renumber one, only add.

/// Success, including "nothing to do".
pub const OK: u8 = 0;
/// The operation failed; the database is as it was before (or as the error says).
pub const FAILURE: u8 = 1;
/// The command line was wrong (unknown flag, bad target, bad value).
pub const USAGE: u8 = 2;
/// A check found a difference: pending migrations (`status --exit-code`), drift, a failed verify.
pub const DIFFERENCE: u8 = 3;
/// The database is locked by another process and stayed locked for the whole busy timeout.
pub const LOCKED: u8 = 4;
/// Refused: the operation needs `--yes` (or `--force`) when no terminal can ask.
pub const NEEDS_CONFIRMATION: u8 = 5;
