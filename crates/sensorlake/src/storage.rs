//! The file operations the spool and the row journal need, behind a small trait, so the
//! same code runs on `std::fs` (Linux, macOS, ESP-IDF's LittleFS/FAT VFS) and on the
//! crash-simulating storage of the tests ([`crate::sim_storage`], cargo feature `sim`).
//!
//! Paths are relative to the storage's root and use `/` as separator (`ready/0000002a.pq`).
//! Writes are not durable until [`Storage::sync_file`]; created, renamed and removed
//! names are not durable until [`Storage::sync_dir`] of their directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One file in a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name (no directory).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, where the file system keeps one.
    pub modified: Option<SystemTime>,
}

/// What a directory entry that is not a regular file is (see [`Storage::list_not_files`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAFile {
    /// A directory.
    Dir,
    /// A symbolic link (to anything, even a regular file).
    Symlink,
    /// A device, socket, FIFO or other special file.
    Special,
}

impl NotAFile {
    /// `a directory`, `a symlink`, `a special file`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dir => "a directory",
            Self::Symlink => "a symlink",
            Self::Special => "a special file",
        }
    }
}

/// The file operations of the spool and the journal. Implementations are cheap handles:
/// cloning one gives another handle to the same files.
pub trait Storage {
    /// Creates directory `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &str) -> io::Result<()>;
    /// Creates or truncates `path` and writes `data` (not yet durable).
    fn write(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Appends `data` to `path`, creating it if missing (not yet durable).
    fn append(&self, path: &str, data: &[u8]) -> io::Result<()>;
    /// Makes the content of `path` durable (fsync).
    fn sync_file(&self, path: &str) -> io::Result<()>;
    /// Makes the names created, renamed or removed in `dir` durable, where the platform
    /// supports it (a no-op where it does not, e.g. on ESP-IDF, whose FAT and LittleFS
    /// drivers commit directory changes when the file operation returns).
    fn sync_dir(&self, dir: &str) -> io::Result<()>;
    /// Renames `from` to `to`. Callers never rename onto an existing name: some file
    /// systems (FAT) cannot replace a file by renaming.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes file `path`.
    fn remove(&self, path: &str) -> io::Result<()>;
    /// The files (not directories) in `dir`, in no particular order.
    fn list(&self, dir: &str) -> io::Result<Vec<DirEntry>>;
    /// The whole content of `path`.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The entries of `dir` that [`Storage::list`] leaves out because they are not
    /// regular files (directories, symlinks, special files), so the spool can report
    /// them instead of ignoring them. Storage that holds only files returns none.
    fn list_not_files(&self, dir: &str) -> io::Result<Vec<(String, NotAFile)>> {
        let _ = dir;
        Ok(Vec::new())
    }
}

/// [`Storage`] on `std::fs` under a root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdStorage {
    root: PathBuf,
}

impl StdStorage {
    /// Storage under `root` (created on first use by [`Storage::create_dir_all`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, relative: &str) -> PathBuf {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path.push(part);
        }
        path
    }
}

/// Adds the path to an I/O error, keeping its kind.
fn at(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl Storage for StdStorage {
    fn create_dir_all(&self, dir: &str) -> io::Result<()> {
        let path = self.path(dir);
        fs::create_dir_all(&path).map_err(|e| at(&path, "cannot create directory", e))
    }

    fn write(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(path);
        File::create(&path)
            .and_then(|mut f| f.write_all(data))
            .map_err(|e| at(&path, "cannot write", e))
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(path);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(data))
            .map_err(|e| at(&path, "cannot append to", e))
    }

    fn sync_file(&self, path: &str) -> io::Result<()> {
        let path = self.path(path);
        // fsync flushes the file's data whichever descriptor wrote it. Opened for
        // writing because some platforms only flush writable handles.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| at(&path, "cannot sync", e))
    }

    fn sync_dir(&self, dir: &str) -> io::Result<()> {
        sync_dir_path(&self.path(dir))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let (from, to) = (self.path(from), self.path(to));
        fs::rename(&from, &to).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot rename {} to {}: {e}", from.display(), to.display()),
            )
        })
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        let path = self.path(path);
        fs::remove_file(&path).map_err(|e| at(&path, "cannot remove", e))
    }

    fn list(&self, dir: &str) -> io::Result<Vec<DirEntry>> {
        let path = self.path(dir);
        let mut out = Vec::new();
        for entry in fs::read_dir(&path).map_err(|e| at(&path, "cannot list", e))? {
            let entry = entry.map_err(|e| at(&path, "cannot list", e))?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed between the listing and the stat.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&entry.path(), "cannot stat", e)),
            };
            if meta.is_file() {
                out.push(DirEntry {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    size: meta.len(),
                    modified: meta.modified().ok(),
                });
            }
        }
        Ok(out)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let path = self.path(path);
        fs::read(&path).map_err(|e| at(&path, "cannot read", e))
    }

    fn list_not_files(&self, dir: &str) -> io::Result<Vec<(String, NotAFile)>> {
        let path = self.path(dir);
        let mut out = Vec::new();
        for entry in fs::read_dir(&path).map_err(|e| at(&path, "cannot list", e))? {
            let entry = entry.map_err(|e| at(&path, "cannot list", e))?;
            // The entry itself, not what a symlink points to (as `list` stats it).
            let kind = match entry.metadata().map(|m| m.file_type()) {
                Ok(t) if t.is_file() => continue,
                Ok(t) if t.is_symlink() => NotAFile::Symlink,
                Ok(t) if t.is_dir() => NotAFile::Dir,
                Ok(_) => NotAFile::Special,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&entry.path(), "cannot stat", e)),
            };
            out.push((entry.file_name().to_string_lossy().into_owned(), kind));
        }
        Ok(out)
    }
}

/// fsync of a directory: makes its entries durable on POSIX systems.
#[cfg(all(unix, not(target_os = "espidf")))]
fn sync_dir_path(path: &Path) -> io::Result<()> {
    match File::open(path).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Some file systems (and FUSE mounts) refuse fsync on directories: nothing
        // more can be done there.
        Err(e) if e.raw_os_error() == Some(22) => Ok(()), // EINVAL
        Err(e) => Err(at(path, "cannot sync directory", e)),
    }
}

/// ESP-IDF's VFS cannot open directories as files; its FAT and LittleFS drivers write
/// directory entries when the operation returns. Windows cannot fsync a directory.
#[cfg(not(all(unix, not(target_os = "espidf"))))]
fn sync_dir_path(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Whether an I/O error means the storage is full (ENOSPC).
pub fn is_storage_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "sensorlake-storage-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn std_storage_round_trips_files() {
        let root = temp_root("roundtrip");
        let s = StdStorage::new(&root);
        s.create_dir_all("a/b").unwrap();
        s.write("a/b/x", b"hello").unwrap();
        s.append("a/b/x", b" world").unwrap();
        s.sync_file("a/b/x").unwrap();
        s.sync_dir("a/b").unwrap();
        assert_eq!(s.read("a/b/x").unwrap(), b"hello world");
        s.rename("a/b/x", "a/y").unwrap();
        let listed = s.list("a").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].name.as_str(), listed[0].size), ("y", 11));
        let err = s.read("a/b/x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("a/b/x"), "{err}");
        s.remove("a/y").unwrap();
        assert!(s.list("a").unwrap().is_empty());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn recognises_a_full_disk() {
        #[cfg(unix)]
        assert!(is_storage_full(&io::Error::from_raw_os_error(28))); // ENOSPC
        assert!(is_storage_full(&io::Error::new(
            io::ErrorKind::StorageFull,
            "full"
        )));
        assert!(!is_storage_full(&io::Error::other("x")));
    }
}
