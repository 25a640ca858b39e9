//! Named points in the spool and upload code where a test can abort the process, because
//! random kills rarely land in the few microseconds between two file operations.
//!
//! The library only calls [`hit`] with a phase name; what happens there is up to a hook
//! the host installs ([`set_hook`]). Without a hook (the firmware) a hit is one atomic load.

use std::sync::OnceLock;

/// The encoded file is in memory, nothing written yet.
pub const AFTER_ENCODE: &str = "after-encode";
/// The file is written to `tmp/`, not yet synced.
pub const AFTER_TMP_WRITE: &str = "after-tmp-write";
/// The file in `tmp/` is synced.
pub const AFTER_FSYNC: &str = "after-fsync";
/// The file was renamed into `ready/`, the directory not yet synced.
pub const AFTER_RENAME: &str = "after-rename";
/// The PUT was answered (the object may be stored), the file is still spooled.
pub const AFTER_PUT: &str = "after-put";
/// About to delete an uploaded file from `ready/`.
pub const BEFORE_DELETE: &str = "before-delete";
/// A source position became durable (a spooled file's directory entry, or a
/// `done-` marker of an uploaded file).
pub const AFTER_OFFSET_COMMIT: &str = "after-offset-commit";

/// Every phase, in flow order.
pub const PHASES: [&str; 7] = [
    AFTER_ENCODE,
    AFTER_TMP_WRITE,
    AFTER_FSYNC,
    AFTER_RENAME,
    AFTER_PUT,
    BEFORE_DELETE,
    AFTER_OFFSET_COMMIT,
];

type Hook = Box<dyn Fn(&'static str) + Send + Sync>;

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs the process-wide hook called at every phase (once; later calls are ignored
/// and return `false`).
pub fn set_hook(hook: impl Fn(&'static str) + Send + Sync + 'static) -> bool {
    HOOK.set(Box::new(hook)).is_ok()
}

/// Passes through `phase`.
#[inline]
pub fn hit(phase: &'static str) {
    if let Some(hook) = HOOK.get() {
        hook(phase);
    }
}
