//! Filesystem semantics over a [`Remote`], on plain types.
//!
//! The kernel asks by inode; FTP answers by path and by directory listing. This module turns
//! one into the other: names are checked before they become paths, attributes come from the
//! parent directory's (cached) listing, reads go to a per-handle [`RemoteReader`]. Nothing
//! here knows about FUSE types or FTP commands, so everything is testable against the
//! in-memory `testing::MemRemote` and its injected faults (the `testing` feature).
//!
//! Decisions worth knowing:
//! - A name that the server cannot have (`/`, NUL, CR, LF, not UTF-8) is `ENOENT` on lookup;
//!   one longer than 255 bytes is `ENAMETOOLONG`.
//! - Directories report `nlink = 1` ("not counted"), so `find` does not use the
//!   subdirectory-count shortcut that would skip directories.
//! - Attributes stay valid in the kernel for `ttl`, the same time a listing stays cached.
//! - An opened file keeps the kernel's page cache when its size and mtime are what they were
//!   at its previous open, so re-reading an unchanged file costs no transfer.
//! - Walks are met half-way: subdirectories of an opened directory are listed, and the next
//!   small files of a directory read file after file are read, ahead on spare connections
//!   ([`prefetch`]).
//!
//! Changes to the namespace (`mkdir`, `unlink`, `rmdir`, `rename`) are in `fs::namespace`,
//! attributes set and asked (`setattr`, `access`, `statfs`) in `fs::attr`.

mod attr;
mod copy;
pub mod handles;
mod namespace;
pub mod prefetch;
mod writeback;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use self::handles::{Handle, Handles};
use crate::cache::{DirCache, Listing};
use crate::error::{Error, Result};
use crate::inode::{InodeTable, ROOT};
use crate::remote::{self, Kind, Remote, RemoteEntry, RemoteReader, NAME_MAX};
pub use crate::upload::UploadMode;
use crate::upload::{Uploader, Writes};

/// How a file is opened, in plain terms.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenMode {
    pub write: bool,
    pub truncate: bool,
    /// The opening process (thread group id); 0 when unknown.
    pub owner: u32,
}

/// What `setattr` changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub mtime: Option<SystemTime>,
}

/// The mask of the modes shown where the server reports none, unless `-o umask` is set.
pub const DEFAULT_UMASK: u32 = 0o022;

/// Options of the core, from the validated configuration.
#[derive(Clone, Debug)]
pub struct FsOptions {
    pub uid: u32,
    pub gid: u32,
    /// `-o umask=`, masking every mode shown; `None` shows the server's modes as they are
    /// and masks only the defaults (with [`DEFAULT_UMASK`]).
    pub umask: Option<u32>,
    /// How long listings (and the kernel's attributes and entries) stay valid.
    pub ttl: Duration,
    /// Bound on cached listing entries.
    pub max_cached_entries: usize,
    pub read_only: bool,
    /// Where spool files live.
    pub spool_dir: PathBuf,
    /// Where data that could not be uploaded is kept when nobody is left to tell.
    pub recovery_dir: PathBuf,
    pub upload: UploadMode,
    /// `-o strict_times`: a directory time the server cannot set is `EPERM`, not ignored.
    pub strict_times: bool,
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
    /// The write path: spools, pending creates, uploads (see [`crate::upload`]).
    uploader: Uploader,
    /// A directory time the server could not set was logged (once per mount).
    dir_time_logged: AtomicBool,
    /// Listings and small files fetched ahead of a walk (see [`prefetch`]).
    prefetch: Arc<prefetch::Prefetch>,
}

impl<R: Remote> FtpFs<R> {
    pub fn new(remote: R, opts: FsOptions) -> FtpFs<R> {
        let uploader = Uploader::new(
            opts.spool_dir.clone(),
            opts.recovery_dir.clone(),
            opts.upload,
            opts.ttl,
        );
        FtpFs {
            cache: DirCache::new(opts.ttl, opts.max_cached_entries),
            remote,
            opts,
            inodes: InodeTable::default(),
            handles: Handles::default(),
            mounted_at: SystemTime::now(),
            opened: Mutex::new(HashMap::new()),
            uploader,
            dir_time_logged: AtomicBool::new(false),
            prefetch: Arc::default(),
        }
    }

    /// The write path over this mount's remote, cache and inode table.
    fn writes(&self) -> Writes<'_, R> {
        self.uploader.with(&self.remote, &self.cache, &self.inodes)
    }

    pub fn remote(&self) -> &R {
        &self.remote
    }

    pub fn ttl(&self) -> Duration {
        self.opts.ttl
    }

    fn path_of(&self, ino: u64) -> Result<String> {
        self.inodes.path(ino).ok_or(Error::Stale)
    }

    /// The listing of `dir`, from the cache or the server, with the files created here and
    /// not uploaded yet (which the write path knows).
    fn listing(&self, dir: &str) -> Result<Arc<Listing>> {
        self.writes().listing(dir)
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
        let perm = self.shown_mode(e.mode, default);
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

    /// The mode bits shown: the server's as they are (a listing that gives them is the
    /// truth, and `chmod` sets them), the default masked where it gives none; `-o umask`
    /// masks both.
    fn shown_mode(&self, server: Option<u32>, default: u32) -> u32 {
        let mode = match (server, self.opts.umask) {
            (Some(m), None) => m,
            (Some(m), Some(mask)) => m & !mask,
            (None, mask) => default & !mask.unwrap_or(DEFAULT_UMASK),
        };
        mode & 0o7777
    }

    fn root_attr(&self) -> Attr {
        Attr {
            ino: ROOT,
            kind: Kind::Dir,
            size: 0,
            mtime: self.mounted_at,
            perm: self.shown_mode(None, 0o755) as u16,
            uid: self.opts.uid,
            gid: self.opts.gid,
        }
    }

    /// Checks a name from the kernel and turns it into a `&str` FTP can carry. A name no
    /// server can have is `ENOENT` when looked up (we drop such names from every listing).
    fn name<'a>(&self, name: &'a OsStr) -> Result<&'a str> {
        checked_name(name, Error::NotFound)
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<Attr> {
        let name = self.name(name)?;
        let dir = self.path_of(parent)?;
        if self.cache.get(&dir).is_none() {
            self.prefetch_walk_may_start();
        }
        let listing = self.listing(&dir)?;
        let entry = listing.get(name).ok_or(Error::NotFound)?;
        let path = remote::join(&dir, name);
        let ino = self.inodes.lookup(&path);
        Ok(self.attr_now(ino, &path, entry))
    }

    /// [`Self::attr_of`], with the size and mtime of a file open for writing taken from its
    /// spool, as `getattr` does. The kernel takes the attributes of a lookup or a
    /// readdirplus entry as the file's: a listing's smaller size made the next `>>` write
    /// land on the last line (appends were lost while another process ran `stat` or `ls`).
    fn attr_now(&self, ino: u64, path: &str, e: &RemoteEntry) -> Attr {
        let mut attr = self.attr_of(ino, path, e);
        if attr.kind == Kind::File {
            if let Some((size, mtime)) = self.writes().spooled_attr(ino) {
                attr.size = size;
                attr.mtime = mtime;
            }
        }
        attr
    }

    pub fn forget(&self, ino: u64, n: u64) {
        if self.inodes.forget(ino, n) {
            log::debug!("inode {ino} forgotten");
            // Keep-cache bookkeeping lives exactly as long as the inode.
            self.opened.lock().remove(&ino);
        }
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        if ino == ROOT {
            return Ok(self.root_attr());
        }
        let path = self.path_of(ino)?;
        // While a file is open for writing its spool is the truth for size and mtime, clean
        // or not: after an upload it equals the server. Reading the listing first and the
        // spool second raced with a concurrent fsync's upload and reported the size before
        // it (found by the random-operation exerciser).
        if let Some((size, mtime)) = self.writes().spooled_attr(ino) {
            let perm = match self.entry(&path) {
                Ok(entry) => self.attr_of(ino, &path, &entry).perm,
                Err(_) => self.shown_mode(None, 0o644) as u16,
            };
            return Ok(Attr {
                ino,
                kind: Kind::File,
                size,
                mtime,
                perm,
                uid: self.opts.uid,
                gid: self.opts.gid,
            });
        }
        let listed = self.entry(&path);
        let entry = listed?;
        Ok(self.attr_of(ino, &path, &entry))
    }

    /// `lseek(SEEK_DATA)` (`data`) or `lseek(SEEK_HOLE)`: FTP has no sparse files, so the
    /// whole file is data and its only hole is the virtual one at the end.
    pub fn seek_data(&self, ino: u64, offset: u64, data: bool) -> Result<u64> {
        let size = self.getattr(ino)?.size;
        match (offset < size, data) {
            (false, _) => Err(Error::PastEnd),
            (true, true) => Ok(offset),
            (true, false) => Ok(size),
        }
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
        self.prefetch_walk_may_start();
        let listing = self.listing(&path)?;
        self.prefetch_opened_dir(&path, &listing);
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
                        // The entry as this mount knows it now, not as the listing the
                        // directory was opened with had it (a file written since).
                        let live = self.cache.entry(&child);
                        let e = live.as_ref().unwrap_or(e);
                        (e.name.clone(), self.attr_now(cino, &child, e))
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
                self.forget(e.attr.ino, 1);
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
    pub fn open(&self, ino: u64, mode: OpenMode) -> Result<(u64, bool)> {
        let path = self.path_of(ino)?;
        if ino == ROOT {
            return Err(Error::IsDir);
        }
        let write = mode.write || mode.truncate;
        if write && self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        let spooled = self.writes().is_open(ino);
        // The listing is kept for the prefetch (without a cache, asking again costs one).
        let (listing, listed) = match self.listing(remote::parent(&path)) {
            Ok(l) => {
                let e = l.get(remote::basename(&path)).cloned();
                (Some(l), e.ok_or(Error::NotFound))
            }
            Err(e) => (None, Err(e)),
        };
        let entry = match (listed, spooled) {
            (Ok(e), _) => e,
            // Created by us and not yet listed, or unlinked while open: the spool knows.
            (Err(Error::NotFound), true) => RemoteEntry {
                name: remote::basename(&path).to_string(),
                kind: Kind::File,
                size: 0,
                mtime: None,
                mode: None,
                link_target: None,
            },
            (Err(e), _) => return Err(e),
        };
        if entry.kind == Kind::Dir {
            return Err(Error::IsDir);
        }
        let attr = self.attr_of(ino, &path, &entry);
        let keep = {
            let mut opened = self.opened.lock();
            let same = opened.insert(ino, (attr.size, attr.mtime)) == Some((attr.size, attr.mtime));
            same && !spooled && !write
        };
        if write {
            self.prefetch_forget(&path);
            self.writes().open(ino, entry.size, mode.truncate)?;
        }
        let reader = self.remote.open_reader(&path, entry.size)?;
        let fh = self.handles.insert(Handle::File {
            reader,
            ino,
            write,
            owner: mode.owner,
        });
        if let (false, false, Some(listing)) = (write, spooled, &listing) {
            self.prefetch_opened_file(fh, &path, &entry, listing, keep);
        }
        Ok((fh, keep))
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<remote::Data> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        let Handle::File { reader, ino, .. } = &*handle else {
            return Err(Error::IsDir);
        };
        // Any handle of a file being written reads the written data.
        if let Some(read) = self.writes().read(*ino, offset, size) {
            return read;
        }
        if let Some(data) = self.prefetch_read(fh, offset, size) {
            return Ok(data);
        }
        let data = reader.read_at(offset, size as usize)?;
        self.prefetch_note_read(fh, offset, data.len());
        Ok(data)
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        let Handle::File { ino, write, .. } = &*handle else {
            return Err(Error::IsDir);
        };
        if !*write {
            return Err(Error::Access);
        }
        self.writes().write(*ino, offset, data)
    }

    /// `close(2)` by thread `thread`: uploads like [`Self::flush`] when the caller belongs to
    /// the process that opened the handle. A forked child closing a descriptor it inherited
    /// (every `exec` of a child does, for descriptors marked close-on-exec) would otherwise
    /// upload the file half-written while its opener is still writing; the opener's own
    /// close, an fsync, or the last release uploads it instead.
    ///
    /// `process_of` finds a thread's process. It is asked only when the answer matters: not
    /// for read handles, and not when the caller is the opener's main thread (its thread id
    /// is the process id), which is how `cp`, `tar`, `dd` and shells close. Asking costs a
    /// read of `/proc`, twice per small file copied before this shortcut.
    pub fn flush_from(
        &self,
        fh: u64,
        thread: u32,
        process_of: impl FnOnce(u32) -> u32,
    ) -> Result<()> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        if let Handle::File {
            owner, write: true, ..
        } = &*handle
        {
            if *owner != 0 && thread != 0 && *owner != thread {
                let caller = process_of(thread);
                if caller != *owner {
                    log::debug!("close by process {caller}, opened by {owner}: no upload yet");
                    return Ok(());
                }
            }
        }
        self.flush(fh)
    }

    /// The opener's `close`: upload if the file has unsent changes. This is where a failed
    /// upload reaches the program, as the return value of `close` (with write-back: the
    /// data is journaled and queued, see [`crate::upload::queue`]).
    pub fn flush(&self, fh: u64) -> Result<()> {
        match self.written_ino(fh)? {
            Some(ino) => self.writes().close(ino),
            None => Ok(()),
        }
    }

    /// The last handle of a written file is gone. Unsent data gets one more upload try;
    /// if that fails nobody can be told any more, so the spool is kept in the recovery
    /// directory and its path logged at error level.
    pub fn release(&self, fh: u64) {
        let Some(handle) = self.handles.get(fh) else {
            return;
        };
        self.handles.remove(fh);
        self.prefetch_release(fh);
        let Handle::File {
            ino, write: true, ..
        } = &*handle
        else {
            return;
        };
        self.writes().release(*ino);
    }

    /// The session is over, and no release will come any more. A written file whose last
    /// release never arrived is handled as that release would have been: the kernel drops
    /// the requests still queued when a mount goes away, so an unmount right after a failed
    /// `close` could otherwise lose its data.
    pub fn release_all(&self) {
        self.writes().release_all();
    }

    /// Creates and opens a new file. It is created on the server at once (an empty STOR),
    /// so other clients and listings see it; its data follows at flush.
    ///
    /// `mode` (the caller's, its umask applied) is given to the new file with `SITE CHMOD`
    /// when it differs from the 0644 servers commonly give: right after the empty STOR, or
    /// after the first upload for a file that waits for it.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        exclusive: bool,
        owner: u32,
        mode: u32,
    ) -> Result<(Attr, u64)> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        let listing = self.listing(&dir)?;
        let path = remote::join(&dir, name);
        if let Some(existing) = listing.get(name) {
            if exclusive {
                return Err(Error::Exists);
            }
            if existing.kind == Kind::Dir {
                return Err(Error::IsDir);
            }
            let ino = self.inodes.lookup(&path);
            let (fh, _) = self.open(
                ino,
                OpenMode {
                    write: true,
                    truncate: true,
                    owner,
                },
            )?;
            return Ok((self.getattr(ino)?, fh));
        }
        // The empty STOR that reports a refusal at open(2), or, in a directory that took a
        // file recently, a pending file that waits for its first flush (see
        // [`Writes::create_on_server`]).
        self.prefetch_forget(&path);
        let (waits, applied_mode) = self.writes().create_on_server(&dir, &path, mode)?;
        let now = SystemTime::now();
        let ino = self.inodes.lookup(&path);
        let wanted_mode = self.writes().create_spool(ino, &path, waits, mode)?;
        let shown_mode = applied_mode.or(wanted_mode);
        let entry = RemoteEntry {
            name: name.to_string(),
            kind: Kind::File,
            size: 0,
            mtime: Some(now),
            mode: shown_mode,
            link_target: None,
        };
        self.cache.update(&dir, name, Some(entry.clone()));
        let reader = self.remote.open_reader(&path, 0)?;
        let fh = self.handles.insert(Handle::File {
            reader,
            ino,
            write: true,
            owner,
        });
        Ok((self.attr_of(ino, &path, &entry), fh))
    }

    /// A name for something new: like [`Self::name`], but names no server can have are
    /// refused (EINVAL) instead of being absent.
    fn new_name<'a>(&self, name: &'a OsStr) -> Result<&'a str> {
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        checked_name(name, Error::InvalidName)
    }
}

/// A kernel name as a `&str` FTP can carry, or `ENAMETOOLONG`, or `invalid`.
fn checked_name(name: &OsStr, invalid: Error) -> Result<&str> {
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    match name.to_str() {
        Some(s) if remote::valid_name(s) => Ok(s),
        _ => Err(invalid),
    }
}
