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

/// The bytes of an upload, which can be read again from their start.
pub trait Upload {
    fn open(&self) -> Result<Box<dyn std::io::Read + '_>>;
}

/// An upload in progress, fed as the bytes come (see [`Remote::store_stream`]).
pub trait UploadStream: Send {
    fn write_all(&mut self, data: &[u8]) -> Result<()>;
    /// Ends the upload and returns the server's verdict: only `Ok` means the file is whole.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// No bytes: creating an empty file.
pub struct Empty;

impl Upload for Empty {
    fn open(&self) -> Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(std::io::empty()))
    }
}

impl Upload for Vec<u8> {
    fn open(&self) -> Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(self.as_slice()))
    }
}

pub trait Remote: Send + Sync + 'static {
    type Reader: RemoteReader;

    /// Lists directory `dir`, without `.` and `..` and without entries whose names are unsafe.
    fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>>;

    /// Prepares to read `path`. Network work is deferred to the first `read_at`, so opening a
    /// file that is never read costs nothing.
    fn open_reader(&self, path: &str, size_hint: u64) -> Result<Self::Reader>;

    /// Uploads `data` as the whole content of `path` (STOR). May read `data` more than once
    /// (a retry after a broken connection starts over).
    fn store(&self, path: &str, data: &dyn Upload) -> Result<()>;

    /// Appends `data` to `path` (APPE). Not repeated once bytes may have reached the server:
    /// the caller decides how to recover (a whole STOR, see [`crate::fs`]).
    fn append(&self, path: &str, data: &dyn Upload) -> Result<()>;

    /// Starts a STOR of `path` whose bytes are written as they come, for big sequential
    /// writes. `None` when no connection is free right now (the caller then uploads the
    /// spool at close as usual); never waits for one. Not retried: a failed stream is
    /// replaced by an ordinary upload of the spool.
    fn store_stream(&self, path: &str) -> Result<Option<Box<dyn UploadStream>>>;

    /// Renames `from` to `to` (RNFR immediately followed by RNTO).
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Deletes the file `path` (DELE).
    fn delete(&self, path: &str) -> Result<()>;

    fn mkdir(&self, path: &str) -> Result<()>;

    fn rmdir(&self, path: &str) -> Result<()>;

    /// Sets permission bits (SITE CHMOD); [`crate::error::Error::Unsupported`] if the
    /// server has no way to.
    fn chmod(&self, path: &str, mode: u32) -> Result<()>;

    /// Sets the modification time (MFMT, or vsftpd's `MDTM time path`);
    /// [`crate::error::Error::Unsupported`] if the server has no way to.
    fn set_mtime(&self, path: &str, mtime: SystemTime) -> Result<()>;

    /// The absolute server path of the mount's root (`""` for the server's `/`), used to
    /// rewrite absolute symlink targets.
    fn root(&self) -> &str;
}

/// Rewrites a symlink target so that the kernel resolves it inside the mount. An absolute
/// target means a path on the *server*; taken literally the kernel would follow it on the
/// local machine (`link -> /etc/passwd` would open the local file). Like sshfs's
/// `transform_symlinks`, it becomes relative to the link's directory: a target under the
/// mounted root points at the same file through the mount, one outside it dangles inside
/// the mount rather than leading out of it. Relative targets are the kernel's to resolve
/// and stay as they are.
pub fn mount_relative_target(target: &str, link_path: &str, root: &str) -> String {
    let Some(abs) = target.strip_prefix('/') else {
        return target.to_string();
    };
    let root = root.trim_matches('/');
    let inside = if root.is_empty() {
        abs
    } else {
        abs.strip_prefix(root)
            .and_then(|r| r.strip_prefix('/').or(r.is_empty().then_some("")))
            .unwrap_or(abs)
    };
    let depth = parent(link_path)
        .split('/')
        .filter(|c| !c.is_empty())
        .count();
    let mut out = "../".repeat(depth);
    out.push_str(inside.trim_start_matches('/'));
    if out.is_empty() {
        ".".to_string()
    } else {
        out.trim_end_matches('/').to_string()
    }
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
    fn absolute_symlink_targets_stay_inside_the_mount() {
        assert_eq!(
            mount_relative_target("/etc/passwd", "link", ""),
            "etc/passwd"
        );
        assert_eq!(
            mount_relative_target("/etc/passwd", "a/b/link", ""),
            "../../etc/passwd"
        );
        assert_eq!(
            mount_relative_target("/pub/x/y", "d/link", "/pub"),
            "../x/y"
        );
        assert_eq!(mount_relative_target("/pub", "link", "/pub"), ".");
        assert_eq!(mount_relative_target("/other/z", "link", "/pub"), "other/z");
        assert_eq!(mount_relative_target("rel/t", "a/link", "/pub"), "rel/t");
        assert_eq!(mount_relative_target("../t", "a/link", ""), "../t");
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
