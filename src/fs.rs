//! Filesystem semantics over a [`Remote`], on plain types.
//!
//! The kernel asks by inode; FTP answers by path and by directory listing. This module turns
//! one into the other: names are checked before they become paths, attributes come from the
//! parent directory's (cached) listing, reads go to a per-handle [`RemoteReader`]. Nothing
//! here knows about FUSE types or FTP commands, so everything is testable against the
//! in-memory [`crate::testing::MemRemote`] and its injected faults.
//!
//! Decisions worth knowing:
//! - A name that the server cannot have (`/`, NUL, CR, LF, not UTF-8) is `ENOENT` on lookup;
//!   one longer than 255 bytes is `ENAMETOOLONG`.
//! - Directories report `nlink = 1` ("not counted"), so `find` does not use the
//!   subdirectory-count shortcut that would skip directories.
//! - Attributes stay valid in the kernel for `ttl`, the same time a listing stays cached.
//! - An opened file keeps the kernel's page cache when its size and mtime are what they were
//!   at its previous open, so re-reading an unchanged file costs no transfer.

pub mod handles;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use self::handles::{Handle, Handles};
use crate::cache::{DirCache, Listing};
use crate::error::{Error, Result};
use crate::inode::{InodeTable, ROOT};
use crate::remote::{self, Kind, Remote, RemoteEntry, RemoteReader, NAME_MAX};

/// Options of the core, from the validated configuration.
#[derive(Clone, Debug)]
pub struct FsOptions {
    pub uid: u32,
    pub gid: u32,
    pub umask: u32,
    /// How long listings (and the kernel's attributes and entries) stay valid.
    pub ttl: Duration,
    /// Bound on cached listing entries.
    pub max_cached_entries: usize,
    pub read_only: bool,
}

/// Attributes of one inode, in plain terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub mtime: SystemTime,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
}

/// One entry returned by `readdir`.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Offset of the *next* entry, for the kernel's next call.
    pub next_offset: u64,
    pub name: String,
    pub attr: Attr,
}

/// `statfs` numbers. FTP cannot tell free space, so these are nominal (see README).
#[derive(Clone, Copy, Debug)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
}

pub struct FtpFs<R: Remote> {
    remote: R,
    opts: FsOptions,
    inodes: InodeTable,
    cache: DirCache,
    handles: Handles<R::Reader>,
    mounted_at: SystemTime,
    /// (size, mtime) of each inode at its last open, to decide on keeping the page cache.
    opened: Mutex<HashMap<u64, (u64, SystemTime)>>,
}

impl<R: Remote> FtpFs<R> {
    pub fn new(remote: R, opts: FsOptions) -> FtpFs<R> {
        FtpFs {
            cache: DirCache::new(opts.ttl, opts.max_cached_entries),
            remote,
            opts,
            inodes: InodeTable::default(),
            handles: Handles::default(),
            mounted_at: SystemTime::now(),
            opened: Mutex::new(HashMap::new()),
        }
    }

    pub fn remote(&self) -> &R {
        &self.remote
    }

    pub fn ttl(&self) -> Duration {
        self.opts.ttl
    }

    pub fn read_only(&self) -> bool {
        self.opts.read_only
    }

    fn path_of(&self, ino: u64) -> Result<String> {
        self.inodes.path(ino).ok_or(Error::Stale)
    }

    /// The listing of `dir`, from the cache or the server.
    fn listing(&self, dir: &str) -> Result<Arc<Listing>> {
        if let Some(l) = self.cache.get(dir) {
            return Ok(l);
        }
        let lock = self.cache.fetch_lock(dir);
        let _guard = lock.lock();
        if let Some(l) = self.cache.get(dir) {
            return Ok(l);
        }
        let token = self.cache.token();
        let mut entries = self.remote.list(dir)?;
        // The remote promises safe names; a second check costs nothing and means no
        // implementation mistake can ever form a path outside the mount.
        entries.retain(|e| {
            let ok = remote::valid_name(&e.name);
            if !ok {
                log::debug!("{dir:?}: dropped unsafe name {:?}", e.name);
            }
            ok
        });
        Ok(self.cache.insert(dir, Listing::new(entries), token))
    }

    /// The listing entry for a (non-root) path.
    fn entry(&self, path: &str) -> Result<RemoteEntry> {
        let listing = self.listing(remote::parent(path))?;
        listing
            .get(remote::basename(path))
            .cloned()
            .ok_or(Error::NotFound)
    }

    /// Attributes of the entry at `path` (needed to size a rewritten symlink target).
    fn attr_of(&self, ino: u64, path: &str, e: &RemoteEntry) -> Attr {
        // A symlink whose target the listing does not show cannot be read as a link;
        // presenting it as a file lets RETR (which follows links server-side) serve it.
        let kind = match (e.kind, &e.link_target) {
            (Kind::Symlink, None) => Kind::File,
            (k, _) => k,
        };
        let default = match kind {
            Kind::Dir => 0o755,
            Kind::File => 0o644,
            Kind::Symlink => 0o777,
        };
        let perm = e.mode.unwrap_or(default) & 0o7777 & !self.opts.umask;
        Attr {
            ino,
            kind,
            size: match kind {
                // What readlink will return (absolute targets are rewritten).
                Kind::Symlink => e.link_target.as_ref().map_or(0, |t| {
                    remote::mount_relative_target(t, path, self.remote.root()).len() as u64
                }),
                _ => e.size,
            },
            mtime: e.mtime.unwrap_or(UNIX_EPOCH),
            perm: perm as u16,
            uid: self.opts.uid,
            gid: self.opts.gid,
        }
    }

    fn root_attr(&self) -> Attr {
        Attr {
            ino: ROOT,
            kind: Kind::Dir,
            size: 0,
            mtime: self.mounted_at,
            perm: (0o755 & !self.opts.umask) as u16,
            uid: self.opts.uid,
            gid: self.opts.gid,
        }
    }

    /// Checks a name from the kernel and turns it into a `&str` FTP can carry.
    fn name<'a>(&self, name: &'a OsStr) -> Result<&'a str> {
        if name.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        match name.to_str() {
            Some(s) if remote::valid_name(s) => Ok(s),
            // No such name can exist on the server: we drop them from every listing.
            _ => Err(Error::NotFound),
        }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        let name = self.name(name)?;
        let dir = self.path_of(parent)?;
        let listing = self.listing(&dir)?;
        let entry = listing.get(name).ok_or(Error::NotFound)?;
        let path = remote::join(&dir, name);
        let ino = self.inodes.lookup(&path);
        Ok(self.attr_of(ino, &path, entry))
    }

    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        if ino == ROOT {
            return Ok(self.root_attr());
        }
        let path = self.path_of(ino)?;
        let entry = self.entry(&path)?;
        Ok(self.attr_of(ino, &path, &entry))
    }

    pub fn readlink(&self, ino: u64) -> Result<String> {
        let path = self.path_of(ino)?;
        let entry = self.entry(&path)?;
        match (entry.kind, entry.link_target) {
            (Kind::Symlink, Some(t)) => {
                Ok(remote::mount_relative_target(&t, &path, self.remote.root()))
            }
            _ => Err(Error::InvalidName),
        }
    }

    /// Opens a directory: its listing is taken once here, so offsets stay stable while the
    /// directory is read even if the cache refreshes meanwhile.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        let path = self.path_of(ino)?;
        if ino != ROOT && self.entry(&path)?.kind != Kind::Dir {
            return Err(Error::NotDir);
        }
        let listing = self.listing(&path)?;
        Ok(self.handles.insert(Handle::Dir { path, listing }))
    }

    /// Entries from `offset` on; `.` and `..` come first. `plus` takes a kernel reference on
    /// each returned entry (readdirplus); the caller reports how many it could use with
    /// [`FtpFs::readdir_unused`].
    pub fn readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        max: usize,
        plus: bool,
    ) -> Result<Vec<DirEntry>> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        let Handle::Dir { path, listing } = &*handle else {
            return Err(Error::NotDir);
        };
        let mut out = Vec::new();
        let mut off = offset;
        while out.len() < max {
            let (name, attr) = match off {
                0 => (".".to_string(), self.dir_attr(ino)),
                1 => {
                    let parent = remote::parent(path);
                    let pino = if ino == ROOT {
                        ROOT
                    } else {
                        self.inodes.peek(parent)
                    };
                    ("..".to_string(), self.dir_attr(pino))
                }
                n => match listing.entries.get((n - 2) as usize) {
                    Some(e) => {
                        let child = remote::join(path, &e.name);
                        let cino = if plus {
                            self.inodes.lookup(&child)
                        } else {
                            self.inodes.peek(&child)
                        };
                        (e.name.clone(), self.attr_of(cino, &child, e))
                    }
                    None => break,
                },
            };
            off += 1;
            out.push(DirEntry {
                next_offset: off,
                name,
                attr,
            });
        }
        Ok(out)
    }

    /// readdirplus entries that did not fit in the kernel's buffer: give their references back.
    pub fn readdir_unused(&self, entries: &[DirEntry]) {
        for e in entries {
            if e.name != "." && e.name != ".." {
                self.inodes.forget(e.attr.ino, 1);
            }
        }
    }

    fn dir_attr(&self, ino: u64) -> Attr {
        let mut a = self.root_attr();
        a.ino = ino;
        a
    }

    pub fn releasedir(&self, fh: u64) {
        self.handles.remove(fh);
    }

    /// Opens a file for reading. Returns the handle and whether the kernel may keep the
    /// pages it cached at the previous open.
    pub fn open(&self, ino: u64, write: bool) -> Result<(u64, bool)> {
        let path = self.path_of(ino)?;
        if ino == ROOT {
            return Err(Error::IsDir);
        }
        let entry = self.entry(&path)?;
        if entry.kind == Kind::Dir {
            return Err(Error::IsDir);
        }
        if write {
            return Err(Error::ReadOnly);
        }
        let attr = self.attr_of(ino, &path, &entry);
        let keep = {
            let mut opened = self.opened.lock();
            opened.insert(ino, (attr.size, attr.mtime)) == Some((attr.size, attr.mtime))
        };
        let reader = self.remote.open_reader(&path, entry.size)?;
        let fh = self.handles.insert(Handle::File { reader });
        Ok((fh, keep))
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        let Handle::File { reader } = &*handle else {
            return Err(Error::IsDir);
        };
        reader.read_at(offset, size as usize)
    }

    pub fn release(&self, fh: u64) {
        self.handles.remove(fh);
    }

    pub fn statfs(&self) -> StatFs {
        // FTP has no "df". Nominal numbers keep tools that check free space from refusing.
        StatFs {
            blocks: 1 << 40,
            bfree: 1 << 40,
            bavail: 1 << 40,
            files: 1 << 20,
            ffree: 1 << 20,
            bsize: 4096,
            namelen: NAME_MAX as u32,
        }
    }

    /// `access(2)`: checks `mask` (R_OK=4, W_OK=2, X_OK=1) against the mode we report.
    pub fn access(&self, ino: u64, mask: i32, uid: u32, gid: u32) -> Result<()> {
        let attr = self.getattr(ino)?;
        if mask & libc::W_OK != 0 && self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        let perm = u32::from(attr.perm);
        let granted = if uid == 0 {
            // root may read and write anything, and execute what has any x bit.
            let x = if attr.kind == Kind::Dir || perm & 0o111 != 0 {
                1
            } else {
                0
            };
            6 | x
        } else if uid == attr.uid {
            (perm >> 6) & 7
        } else if gid == attr.gid {
            (perm >> 3) & 7
        } else {
            perm & 7
        };
        if (mask as u32) & 7 & !granted != 0 {
            return Err(Error::Access);
        }
        Ok(())
    }
}
