//! Writing a command's output to standard output without panicking when the reader
//! has gone (`sensorlake inspect --json x.parquet | head -1`).
//!
//! `print!` panics on a closed pipe (Rust ignores SIGPIPE, so the write fails with
//! `EPIPE`). Every command prints through [`print`] instead; a closed stdout becomes a
//! [`StdoutClosed`] error, which `main` turns into a quiet exit with status
//! [`STDOUT_CLOSED_EXIT`] (141, what a shell reports for a Unix tool killed by SIGPIPE),
//! with nothing on stderr. Other write errors (a full disk behind a redirect) stay
//! errors with a message.

use std::fmt;
use std::io::{self, Write as _};

/// The exit status after [`StdoutClosed`]: 128 + SIGPIPE (13), as shells report it.
pub const STDOUT_CLOSED_EXIT: u8 = 141;

/// Standard output was closed by its reader (broken pipe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Writes `text` to standard output and flushes it.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let result = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// Writes `text` and a newline to standard output (see [`print`]).
pub fn println(text: &str) -> anyhow::Result<()> {
    print(&format!("{text}\n"))
}

/// Whether `error` (or one it wraps) is [`StdoutClosed`].
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.is::<StdoutClosed>())
}
