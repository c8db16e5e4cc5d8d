//! The one seam between filesystem semantics and the network.
//!
//! [`crate::fs::FtpFs`] knows nothing about FTP: it asks a [`Remote`] for directory listings
//! and for readers of file contents. The real implementation is [`crate::ftp::FtpRemote`];
//! tests use an in-memory double that can be told to fail, so every error path of the
//! filesystem can be exercised without a server that misbehaves on cue.
//!
//! Paths crossing this seam are relative to the mount's root, `/`-separated, without a leading
//! slash (`""` is the root). Every component was checked by [`valid_name`] before it got here:
//! the remote side never sees `.`, `..`, an empty component or one containing `/` or NUL.

use std::time::SystemTime;

use crate::error::Result;

/// What an entry is. Devices, pipes and sockets in a unix listing show up as files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry of a directory listing, as much as the server told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Modification time; `None` when the listing had no parseable date.
    pub mtime: Option<SystemTime>,
    /// Permission bits (`0o7777` at most) when the listing carries them.
    pub mode: Option<u32>,
    /// The target of a symbolic link, when the listing shows it.
    pub link_target: Option<String>,
}

/// Reads one remote file. `read_at` returns `len` bytes from `offset`, fewer only at end of
/// file: the kernel takes a short read as EOF. The reader allocates the buffer itself, once
/// it is its turn: the kernel sends several readahead requests for one file at once, and
/// buffers allocated by requests still queueing would add up to megabytes for nothing.
pub trait RemoteReader: Send + Sync + 'static {
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>>;
}

pub trait Remote: Send + Sync + 'static {
    type Reader: RemoteReader;

    /// Lists directory `dir`, without `.` and `..` and without entries whose names are unsafe.
    fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>>;

    /// Prepares to read `path`. Network work is deferred to the first `read_at`, so opening a
    /// file that is never read costs nothing.
    fn open_reader(&self, path: &str, size_hint: u64) -> Result<Self::Reader>;
}

/// The kernel's limit on one path component.
pub const NAME_MAX: usize = 255;

/// Whether `name` may be a single path component. Anything else, from the kernel or from a
/// server's listing, could form a path outside the mount or a second FTP command.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= NAME_MAX
        && !name
            .bytes()
            .any(|b| matches!(b, b'/' | b'\0' | b'\r' | b'\n'))
}

/// Joins a relative directory path and a (validated) name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The parent of a relative path (`""` for a top-level name).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// The last component of a relative path.
pub fn basename(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, n)| n).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/abs",
            "a\0b",
            "a\rb",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        for good in ["a", "...", "-rf", " lead", "ünï", "a b", &"x".repeat(255)] {
            assert!(valid_name(good), "{good:?}");
        }
    }

    #[test]
    fn paths_join_and_split() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(basename("a/b/c"), "c");
        assert_eq!(basename("a"), "a");
    }
}
