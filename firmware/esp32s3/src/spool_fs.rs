//! The spool partition: LittleFS (joltwallet/littlefs) mounted at `/spool`.

use anyhow::{Context, Result};
use esp_idf_svc::fs::littlefs::Littlefs;
use esp_idf_svc::io::vfs::MountedLittlefs;

/// Where the spool lives in the VFS.
pub const SPOOL_DIR: &str = "/spool";
/// The data partition of partitions.csv.
const PARTITION: &str = "spool";

/// The mounted file system; dropping it unmounts.
pub type MountedSpool = MountedLittlefs<Littlefs<()>>;

/// Mounts the spool partition, formatting it if it holds no file system yet (first boot).
pub fn mount() -> Result<MountedSpool> {
    // SAFETY: the "spool" partition is used by this file system only.
    let fs = unsafe { Littlefs::<()>::new_partition(PARTITION) }?;
    let mounted = match MountedLittlefs::mount(fs, SPOOL_DIR) {
        Ok(mounted) => mounted,
        Err(e) => {
            log::warn!("partition {PARTITION:?} does not mount ({e}); formatting it (first boot?)");
            // SAFETY: as above; the failed mount released the partition.
            let mut fs = unsafe { Littlefs::<()>::new_partition(PARTITION) }?;
            fs.format().context("cannot format the spool partition")?;
            MountedLittlefs::mount(fs, SPOOL_DIR).context("cannot mount the spool partition")?
        }
    };
    if let Ok(info) = mounted.info() {
        log::info!(
            "spool: LittleFS at {SPOOL_DIR}, {} of {} bytes used",
            info.used_bytes,
            info.total_bytes
        );
    }
    Ok(mounted)
}
