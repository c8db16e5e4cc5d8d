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

mod copy;
pub mod handles;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use self::handles::{Handle, Handles};
use crate::cache::{DirCache, Listing};
use crate::error::{Error, Result};
use crate::inode::{InodeTable, ROOT};
use crate::remote::{self, Kind, Remote, RemoteEntry, RemoteReader, NAME_MAX};
use crate::spool::{RemoteReaderDyn, Spool};
use crate::stream;

/// The spool of one inode and how many write handles share it.
struct SpoolEntry {
    /// Held across the upload on purpose: it is this file's own lock, and a write to the
    /// file must wait until the upload of its previous content is decided.
    spool: Mutex<Spool>,
    writers: AtomicUsize,
    /// The server's file had content when the spool was made: replace it atomically.
    replaces: bool,
}

/// How a changed file reaches the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UploadMode {
    /// Upload to a temporary name in the same directory, then rename over the target: the
    /// old content stays whole until the new one is complete.
    #[default]
    Atomic,
    /// STOR straight onto the target (for servers that refuse renames onto existing names
    /// and forbid deleting; a failed upload leaves a partial file).
    InPlace,
}

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

/// The modes servers commonly give a new file and a new directory (umask 022).
const NEW_FILE_MODE: u32 = 0o644;
const NEW_DIR_MODE: u32 = 0o755;

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
    spools: Mutex<HashMap<u64, Arc<SpoolEntry>>>,
    /// Files created here and not yet uploaded: path → inode. Listings keep showing them.
    pending: Mutex<HashMap<String, u64>>,
    /// Directories where a create worked recently (see [`FtpFs::create`]).
    writable_dirs: Mutex<HashMap<String, std::time::Instant>>,
    uploads: AtomicU64,
    /// A directory time the server could not set was logged (once per mount).
    dir_time_logged: std::sync::atomic::AtomicBool,
    /// The server refused `SITE CHMOD` as not implemented: new files and directories keep
    /// the mode it gives them, and it is not asked again.
    no_site_chmod: AtomicBool,
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
            spools: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            writable_dirs: Mutex::new(HashMap::new()),
            uploads: AtomicU64::new(0),
            dir_time_logged: std::sync::atomic::AtomicBool::new(false),
            no_site_chmod: AtomicBool::new(false),
        }
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
        self.add_pending(dir, &mut entries);
        Ok(self.cache.insert(dir, Listing::new(entries), token))
    }

    /// Files created here but not uploaded yet exist for us even if the server's listing
    /// does not show them.
    fn add_pending(&self, dir: &str, entries: &mut Vec<RemoteEntry>) {
        let pending: Vec<(String, u64)> = self
            .pending
            .lock()
            .iter()
            .filter(|(p, _)| remote::parent(p) == dir)
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        for (path, ino) in pending {
            let name = remote::basename(&path);
            if entries.iter().any(|e| e.name == name) {
                continue;
            }
            // The spool may be busy uploading; its size is only a detail here (getattr
            // asks the spool itself).
            let (size, mtime) = self
                .spool_of(ino)
                .and_then(|e| e.spool.try_lock().map(|s| (s.len, s.mtime)))
                .unwrap_or((0, SystemTime::now()));
            entries.push(RemoteEntry {
                name: name.to_string(),
                kind: Kind::File,
                size,
                mtime: Some(mtime),
                mode: None,
                link_target: None,
            });
        }
    }

    /// A file created here exists on the server only after its first upload; operations
    /// that act on the server's file (rename, chmod) upload it first.
    fn ensure_on_server(&self, path: &str) -> Result<()> {
        let prefix = format!("{path}/");
        let inos: Vec<u64> = self
            .pending
            .lock()
            .iter()
            .filter(|(p, _)| *p == path || p.starts_with(&prefix))
            .map(|(_, &i)| i)
            .collect();
        for ino in inos {
            self.upload(ino)?;
        }
        Ok(())
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
        let listing = self.listing(&dir)?;
        let entry = listing.get(name).ok_or(Error::NotFound)?;
        let path = remote::join(&dir, name);
        let ino = self.inodes.lookup(&path);
        Ok(self.attr_of(ino, &path, entry))
    }

    pub fn forget(&self, ino: u64, n: u64) {
        if self.inodes.forget(ino, n) {
            // Keep-cache bookkeeping lives exactly as long as the inode.
            self.opened.lock().remove(&ino);
        }
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        if ino == ROOT {
            return Ok(self.root_attr());
        }
        let path = self.path_of(ino)?;
        if let Some(e) = self.spool_of(ino) {
            // While a file is open for writing its spool is the truth for size and mtime,
            // clean or not: after an upload it equals the server. Reading the listing first
            // and the spool second raced with a concurrent fsync's upload and reported the
            // size before it (found by the random-operation exerciser).
            let (size, mtime) = {
                let s = e.spool.lock();
                (s.len, s.mtime)
            };
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
        let spooled = self.spool_of(ino);
        let entry = match (self.entry(&path), &spooled) {
            (Ok(e), _) => e,
            // Created by us and not yet listed, or unlinked while open: the spool knows.
            (Err(Error::NotFound), Some(_)) => RemoteEntry {
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
            same && spooled.is_none() && !write
        };
        if write {
            let e = self.writer_spool(ino, entry.size)?;
            if mode.truncate {
                let mut s = e.spool.lock();
                self.stop_stream(&mut s);
                s.truncate(0)?;
            }
        }
        let reader = self.remote.open_reader(&path, entry.size)?;
        let fh = self.handles.insert(Handle::File {
            reader,
            ino,
            write,
            owner: mode.owner,
        });
        Ok((fh, keep))
    }

    fn spool_of(&self, ino: u64) -> Option<Arc<SpoolEntry>> {
        self.spools.lock().get(&ino).cloned()
    }

    /// The inode's spool, made if needed, with one more writer counted.
    fn writer_spool(&self, ino: u64, base: u64) -> Result<Arc<SpoolEntry>> {
        let mut map = self.spools.lock();
        if let Some(e) = map.get(&ino) {
            e.writers.fetch_add(1, Ordering::SeqCst);
            return Ok(Arc::clone(e));
        }
        let e = Arc::new(SpoolEntry {
            spool: Mutex::new(Spool::new(&self.opts.spool_dir, base)?),
            writers: AtomicUsize::new(1),
            replaces: base > 0,
        });
        map.insert(ino, Arc::clone(&e));
        Ok(e)
    }

    /// Downloads the server's content into the spool if an operation needs it.
    fn fill(&self, ino: u64, s: &mut Spool) -> Result<()> {
        if s.filled {
            return Ok(());
        }
        let path = self.path_of(ino)?;
        let base = s.base;
        s.fill(|| {
            let r = self.remote.open_reader(&path, base)?;
            Ok(Box::new(r) as Box<dyn RemoteReaderDyn>)
        })
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<remote::Data> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        let Handle::File { reader, ino, .. } = &*handle else {
            return Err(Error::IsDir);
        };
        // Any handle of a file being written reads the written data.
        if let Some(e) = self.spool_of(*ino) {
            let mut s = e.spool.lock();
            if offset < s.base {
                self.fill(*ino, &mut s)?;
            }
            return s.read_at(offset, size as usize).map(remote::Data::from);
        }
        reader.read_at(offset, size as usize)
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        let Handle::File { ino, write, .. } = &*handle else {
            return Err(Error::IsDir);
        };
        if !*write {
            return Err(Error::Access);
        }
        let e = self.spool_of(*ino).ok_or(Error::Stale)?;
        let mut s = e.spool.lock();
        if offset < s.base {
            self.fill(*ino, &mut s)?;
        }
        let at_end = offset == s.len;
        s.write_at(offset, data)?;
        log::trace!("ino {ino}: spool len {} after write", s.len);
        if !at_end {
            self.stop_stream(&mut s);
        } else if let Some(st) = &s.stream {
            st.advance(s.len);
        } else if s.sequential && s.base == 0 && s.len >= stream::STREAM_MIN {
            self.start_stream(*ino, &mut s);
        }
        Ok(data.len() as u32)
    }

    /// Starts uploading a file that is being written from start to end while it is written
    /// (see [`crate::stream`]), to a temporary name beside it. Nothing happens if no
    /// connection is free or anything fails: the upload at `close` remains.
    fn start_stream(&self, ino: u64, s: &mut Spool) {
        let Ok(path) = self.path_of(ino) else {
            return;
        };
        let temp = self.temp_name(&path, "part");
        let upload = match self.remote.store_stream(&temp) {
            Ok(Some(u)) => u,
            Ok(None) => {
                log::debug!("{path}: no free connection to stream the upload");
                return;
            }
            Err(e) => {
                log::debug!("{path}: not streaming: {e}");
                return;
            }
        };
        let file = match s.file_clone() {
            Ok(f) => f,
            Err(e) => {
                log::debug!("{path}: not streaming: {e}");
                drop(upload);
                let _ = self.remote.delete(&temp);
                return;
            }
        };
        match stream::Streamer::start(upload, file, temp.clone(), s.len) {
            Ok(st) => {
                log::debug!("{path}: streaming the upload to {temp}");
                s.stream = Some(st);
            }
            Err(e) => {
                log::debug!("{path}: not streaming: {e}");
                let _ = self.remote.delete(&temp);
            }
        }
    }

    /// Ends a streamed upload that is no longer wanted and deletes its temporary file.
    fn stop_stream(&self, s: &mut Spool) {
        if let Some(st) = s.stream.take() {
            let temp = st.temp.clone();
            st.abort();
            if let Err(e) = self.remote.delete(&temp) {
                log::warn!("could not delete the abandoned upload {temp}: {e}");
            }
        }
    }

    /// Completes the streamed upload of `s` as the file `path`: the rest of the bytes, the
    /// server's verdict, the rename into place. `false` if any of it failed (logged; the
    /// temporary file is deleted), and the ordinary upload takes over.
    fn finish_stream(&self, path: &str, s: &mut Spool) -> bool {
        let Some(st) = s.stream.take() else {
            return false;
        };
        let temp = st.temp.clone();
        if let Err(e) = st.finish(s.len) {
            log::warn!("{path}: streamed upload failed ({e}); uploading the spool");
            let _ = self.remote.delete(&temp);
            return false;
        }
        // put_in_place deletes the temporary file itself when it fails.
        match self.put_in_place(&temp, path, s.len) {
            Ok(()) => true,
            Err(e) => {
                log::warn!(
                    "{path}: streamed upload not renamed into place ({e}); uploading the spool"
                );
                false
            }
        }
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

    /// `fsync` (and the opener's `close`): upload if the file has unsent changes. This is
    /// where a failed upload reaches the program, as the return value of `close`/`fsync`.
    pub fn flush(&self, fh: u64) -> Result<()> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        match &*handle {
            Handle::File {
                ino, write: true, ..
            } => self.upload(*ino),
            _ => Ok(()),
        }
    }

    fn upload(&self, ino: u64) -> Result<()> {
        match self.spool_of(ino) {
            Some(e) => self.upload_entry(ino, &e),
            None => Ok(()),
        }
    }

    fn upload_entry(&self, ino: u64, e: &SpoolEntry) -> Result<()> {
        let mut s = e.spool.lock();
        if s.orphaned {
            self.stop_stream(&mut s);
        }
        if !s.dirty() || s.orphaned {
            return Ok(());
        }
        let path = self.path_of(ino)?;
        self.upload_spool(ino, &path, &mut s, e.replaces)
    }

    /// Sends the spool to the server: APPE of the new tail when that is all that changed,
    /// else the whole file, atomically when it replaces content (see [`UploadMode`]).
    ///
    /// An APPE that fails may have left part of its bytes on the server, and repeating it
    /// would duplicate them. The server's first `base` bytes are still what they were, so the
    /// spool is filled with them and the whole file goes up with STOR: right away when the
    /// failure was transient, at the next flush otherwise.
    fn upload_spool(&self, ino: u64, path: &str, s: &mut Spool, replaces: bool) -> Result<()> {
        let result = if s.stream.is_some() && self.finish_stream(path, s) {
            Ok(())
        } else if s.append_only() {
            let from = s.base;
            match self.remote.append(path, &s.upload_from(from)) {
                // The server does not append (said once, at info, by the remote).
                Err(Error::Unsupported) => {
                    s.append_failed();
                    self.store_whole(ino, path, s, true)
                }
                Err(e) => {
                    s.append_failed();
                    if e.is_retryable(true) {
                        log::warn!("{path}: append failed ({e}); sending the whole file instead");
                        self.store_whole(ino, path, s, true)
                    } else {
                        Err(e)
                    }
                }
                ok => ok,
            }
        } else {
            self.store_whole(ino, path, s, replaces)
        };
        match result {
            Ok(()) => {
                s.uploaded();
                self.pending.lock().remove(path);
                let wanted_mode = s.pending_mode.take();
                let applied_mode =
                    wanted_mode.and_then(|m| self.apply_new_mode(path, Kind::File, m));
                if let Some(t) = s.pending_mtime.take() {
                    // The data is on the server; a time the server cannot set is not worth
                    // failing close(2) over (kernels set times as a side effect of writes).
                    match self.remote.set_mtime(path, Kind::File, t) {
                        Ok(()) => s.mtime = t,
                        Err(Error::Unsupported) => {}
                        Err(e) => log::warn!("{path}: uploaded, but setting its time failed: {e}"),
                    }
                }
                let mut entry = self.cached_entry(path).unwrap_or(RemoteEntry {
                    name: remote::basename(path).to_string(),
                    kind: Kind::File,
                    size: 0,
                    mtime: None,
                    mode: None,
                    link_target: None,
                });
                entry.size = s.len;
                entry.mtime = Some(s.mtime);
                if wanted_mode.is_some() {
                    // Shown since the create; not applied, the server's own is shown.
                    entry.mode = applied_mode;
                }
                self.cache
                    .update(remote::parent(path), &entry.name.clone(), Some(entry));
                Ok(())
            }
            Err(e) => {
                log::warn!("upload of {path} ({} bytes) failed: {e}", s.len);
                Err(e)
            }
        }
    }

    /// The whole spool with STOR, atomically when it replaces content (see [`UploadMode`]).
    fn store_whole(&self, ino: u64, path: &str, s: &mut Spool, replaces: bool) -> Result<()> {
        self.fill(ino, s)?;
        if replaces && self.opts.upload == UploadMode::Atomic {
            self.replace_atomically(path, s)
        } else {
            self.remote.store(path, &s.upload_from(0))
        }
    }

    /// STOR to a temporary name beside the target, then rename over it. The temporary file
    /// is removed on any failure, and the old content is never removed before the new one
    /// is in place: a server that refuses to rename onto an existing name gets the old file
    /// moved aside first and moved back if the second rename fails too.
    fn replace_atomically(&self, path: &str, s: &Spool) -> Result<()> {
        let tmp = self.temp_name(path, "part");
        if let Err(e) = self.remote.store(&tmp, &s.upload_from(0)) {
            let _ = self.remote.delete(&tmp);
            return Err(e);
        }
        self.put_in_place(&tmp, path, s.len)
    }

    /// Renames the complete upload `tmp` (of `len` bytes) onto `path`, with the fallbacks
    /// for servers that refuse to rename onto an existing name; `tmp` is deleted on failure.
    fn put_in_place(&self, tmp: &str, path: &str, len: u64) -> Result<()> {
        let Err(first) = self.remote.rename(tmp, path) else {
            return Ok(());
        };
        if self.renamed_after_all(tmp, path, len) {
            log::warn!("{path}: the server answered the rename with \"{first}\" but did it");
            return Ok(());
        }
        match self.replace_by_moving_aside(tmp, path) {
            Ok(()) => Ok(()),
            Err(_) => {
                let _ = self.remote.delete(tmp);
                Err(first)
            }
        }
    }

    /// For servers that refuse to rename onto an existing name: `target` is moved aside,
    /// `source` renamed into its place, and the old file deleted, or moved back if the
    /// second rename failed. The target is never deleted before its replacement is in place.
    fn replace_by_moving_aside(&self, source: &str, target: &str) -> Result<()> {
        let old = self.temp_name(target, "old");
        self.remote.rename(target, &old)?;
        match self.remote.rename(source, target) {
            Ok(()) => {
                log::info!(
                    "{target}: the server refuses renaming onto a name; moved the old one aside"
                );
                if let Err(e) = self.remote.delete(&old) {
                    log::warn!("{target}: the replaced old version stays as {old}: {e}");
                }
                Ok(())
            }
            Err(e) => {
                if let Err(e2) = self.remote.rename(&old, target) {
                    log::error!(
                        "{target}: the old version is kept as {old}; restoring it failed: {e2}"
                    );
                }
                Err(e)
            }
        }
    }

    /// Whether a rename the server reported as failed happened anyway: the temporary name is
    /// gone and the target has exactly the uploaded size (pure-ftpd answers 552 to an RNTO
    /// that takes a user over quota, after doing it).
    fn renamed_after_all(&self, tmp: &str, path: &str, len: u64) -> bool {
        let dir = remote::parent(path);
        self.cache.invalidate(dir);
        match self.listing(dir) {
            Ok(l) => {
                l.get(remote::basename(tmp)).is_none()
                    && l.get(remote::basename(path)).is_some_and(|e| e.size == len)
            }
            Err(_) => false,
        }
    }

    /// A hidden name beside `path` for an upload in progress or an old version.
    fn temp_name(&self, path: &str, what: &str) -> String {
        let n = self.uploads.fetch_add(1, Ordering::Relaxed);
        let short: String = remote::basename(path).chars().take(100).collect();
        remote::join(
            remote::parent(path),
            &format!(".ftpfs-{short}.{}-{n}.{what}", std::process::id()),
        )
    }

    fn cached_entry(&self, path: &str) -> Option<RemoteEntry> {
        self.cache
            .get(remote::parent(path))
            .and_then(|l| l.get(remote::basename(path)).cloned())
    }

    /// The last handle of a written file is gone. Unsent data gets one more upload try;
    /// if that fails nobody can be told any more, so the spool is kept in the recovery
    /// directory and its path logged at error level.
    pub fn release(&self, fh: u64) {
        let Some(handle) = self.handles.get(fh) else {
            return;
        };
        self.handles.remove(fh);
        let Handle::File {
            ino, write: true, ..
        } = &*handle
        else {
            return;
        };
        let last = {
            let mut map = self.spools.lock();
            match map.get(ino) {
                Some(e) if e.writers.fetch_sub(1, Ordering::SeqCst) == 1 => map.remove(ino),
                _ => None,
            }
        };
        let Some(e) = last else {
            return;
        };
        self.last_release(*ino, &e);
    }

    /// The session is over, and no release will come any more. A written file whose last
    /// release never arrived is handled as that release would have been: the kernel drops
    /// the requests still queued when a mount goes away, so an unmount right after a failed
    /// `close` could otherwise lose its data.
    pub fn release_all(&self) {
        let left: Vec<(u64, Arc<SpoolEntry>)> = self.spools.lock().drain().collect();
        for (ino, e) in left {
            log::info!(
                "{}: its last release never came (the mount went away first); handled now",
                self.inodes.path(ino).unwrap_or_default()
            );
            self.last_release(ino, &e);
        }
    }

    /// One more upload try for a spool nobody holds any more; if it fails, the recovery
    /// directory.
    fn last_release(&self, ino: u64, e: &SpoolEntry) {
        // The entry is out of the map now: upload it directly, not by inode.
        if self.upload_entry(ino, e).is_ok() {
            return;
        }
        let spool = e.spool.lock();
        let path = self.inodes.path(ino).unwrap_or_default();
        if self.pending.lock().remove(&path).is_some() {
            // It never reached the server: it must not linger in our listings either.
            self.cache
                .update(remote::parent(&path), remote::basename(&path), None);
        }
        match spool.recover(&self.opts.recovery_dir, &path) {
            Ok(p) => log::error!(
                "{path}: data that could not be uploaded was saved to {}",
                p.display()
            ),
            Err(err) => log::error!("{path}: data could not be uploaded nor saved: {err}"),
        }
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
        // Errors belong at open(2): many programs never look at close(2) (a shell's `>`
        // does not). So the first create in a directory is an empty STOR, and a refusal
        // (EACCES, EDQUOT) is reported here. Once a directory has taken a file, later
        // creates in it wait for their first flush: one transfer per new file, not two,
        // and our own listings show the file meanwhile (see `pending`).
        let proven = self
            .writable_dirs
            .lock()
            .get(&dir)
            .is_some_and(|t| t.elapsed() < self.opts.ttl.max(Duration::from_secs(1)));
        let mut shown_mode = None;
        if !proven {
            self.remote.store(&path, &remote::Empty)?;
            self.writable_dirs
                .lock()
                .insert(dir.clone(), std::time::Instant::now());
            shown_mode = self.apply_new_mode(&path, Kind::File, mode);
        }
        let now = SystemTime::now();
        let ino = self.inodes.lookup(&path);
        let spool = self.writer_spool(ino, 0)?;
        if proven {
            let mut s = spool.spool.lock();
            s.mark_new();
            let mode = mode & 0o7777;
            if mode != NEW_FILE_MODE && !self.no_site_chmod.load(Ordering::Relaxed) {
                s.pending_mode = Some(mode);
                shown_mode = Some(mode);
            }
            drop(s);
            self.pending.lock().insert(path.clone(), ino);
        }
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

    /// Gives a new file or directory the mode its creator asked for, when that differs from
    /// the usual 0644 or 0755 (what servers commonly give: the mode of a new entry is not known without
    /// listing it again, which would cost more than the `SITE CHMOD` it could save). Returns
    /// the mode applied, to be shown until the next listing says what the server has. The
    /// object exists either way: a server without `SITE CHMOD` (learned once), or one that
    /// refuses it, leaves the mode it gave, logged, and the creation succeeds.
    fn apply_new_mode(&self, path: &str, kind: Kind, mode: u32) -> Option<u32> {
        let usual = if kind == Kind::Dir {
            NEW_DIR_MODE
        } else {
            NEW_FILE_MODE
        };
        let mode = mode & 0o7777;
        if mode == usual || self.no_site_chmod.load(Ordering::Relaxed) {
            return None;
        }
        match self.remote.chmod(path, kind, mode) {
            Ok(()) => Some(mode),
            // The remote answers a SITE CHMOD it learned the server lacks with that first
            // reply (`502`), without asking again.
            Err(e) if e.errno() == libc::ENOTSUP => {
                if !self.no_site_chmod.swap(true, Ordering::Relaxed) {
                    log::info!(
                        "the server has no SITE CHMOD: new files and directories keep the mode it gives them"
                    );
                }
                None
            }
            Err(e) => {
                log::info!("{path}: created, but mode {mode:o} was not applied: {e}");
                None
            }
        }
    }

    /// A name for something new: like [`Self::name`], but names no server can have are
    /// refused (EINVAL) instead of being absent.
    fn new_name<'a>(&self, name: &'a OsStr) -> Result<&'a str> {
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        checked_name(name, Error::InvalidName)
    }

    /// `mode` (the caller's, its umask applied) is given to the new directory with `SITE
    /// CHMOD` when it differs from the 0755 servers commonly give.
    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32) -> Result<Attr> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        if self.listing(&dir)?.get(name).is_some() {
            return Err(Error::Exists);
        }
        let path = remote::join(&dir, name);
        if let Err(e) = self.remote.mkdir(&path) {
            return Err(self.explain(&dir, name, e, true));
        }
        let entry = RemoteEntry {
            name: name.to_string(),
            kind: Kind::Dir,
            size: 0,
            mtime: Some(SystemTime::now()),
            mode: self.apply_new_mode(&path, Kind::Dir, mode),
            link_target: None,
        };
        self.cache.update(&dir, name, Some(entry.clone()));
        // A directory we just made is empty: `mkdir -p a/b`, `tar x` and `cp -r` look up
        // names in it right away, and need not wait for a listing to learn that.
        self.cache
            .insert(&path, Listing::new(Vec::new()), self.cache.token());
        let ino = self.inodes.lookup(&path);
        Ok(self.attr_of(ino, &path, &entry))
    }

    /// After the server refused a change, looks again: the name appeared (someone else made
    /// it: EEXIST) or vanished (ENOENT); else the server's own answer stands.
    fn explain(&self, dir: &str, name: &str, err: Error, creating: bool) -> Error {
        self.cache.invalidate(dir);
        match self.listing(dir).map(|l| l.get(name).is_some()) {
            Ok(true) if creating => Error::Exists,
            Ok(false) if !creating => Error::NotFound,
            _ => err,
        }
    }

    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        if self.kind_in(&dir, name)? == Kind::Dir {
            return Err(Error::IsDir);
        }
        let path = remote::join(&dir, name);
        if !self.forget_pending(&path) {
            if let Err(e) = self.remote.delete(&path) {
                return Err(self.explain(&dir, name, e, false));
            }
        }
        self.cache.update(&dir, name, None);
        self.detach(&path);
        Ok(())
    }

    /// Drops a created-but-never-uploaded file: true if `path` was one (nothing to delete
    /// on the server). Decided under the spool's lock, so an upload cannot slip in between.
    fn forget_pending(&self, path: &str) -> bool {
        let Some(ino) = self.pending.lock().get(path).copied() else {
            return false;
        };
        let Some(e) = self.spool_of(ino) else {
            return self.pending.lock().remove(path).is_some();
        };
        let mut s = e.spool.lock();
        let still = self.pending.lock().remove(path).is_some();
        if still {
            s.orphaned = true;
            self.stop_stream(&mut s);
        }
        still
    }

    /// What `name` is in `dir`, from the (cached) listing; ENOENT if absent.
    fn kind_in(&self, dir: &str, name: &str) -> Result<Kind> {
        self.listing(dir)?
            .get(name)
            .map(|e| e.kind)
            .ok_or(Error::NotFound)
    }

    /// `path` is gone from the server: an open spool of it must not bring it back.
    fn detach(&self, path: &str) {
        if let Some(e) = self.inodes.find(path).and_then(|ino| self.spool_of(ino)) {
            let mut s = e.spool.lock();
            s.orphaned = true;
            self.stop_stream(&mut s);
        }
        self.inodes.unlink(path);
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        if self.kind_in(&dir, name)? != Kind::Dir {
            return Err(Error::NotDir);
        }
        let path = remote::join(&dir, name);
        if !self.listing(&path)?.entries.is_empty() {
            return Err(Error::NotEmpty);
        }
        if let Err(e) = self.remote.rmdir(&path) {
            self.cache.invalidate(&path);
            if self.listing(&path).is_ok_and(|l| !l.entries.is_empty()) {
                return Err(Error::NotEmpty);
            }
            return Err(self.explain(&dir, name, e, false));
        }
        self.cache.update(&dir, name, None);
        self.cache.invalidate_tree(&path);
        self.inodes.unlink(&path);
        Ok(())
    }

    /// rename(2) over RNFR/RNTO. POSIX replaces an existing target; FTP servers differ, so
    /// an existing target is handled here: an empty directory is removed first, a file is
    /// replaced by the rename itself or, if the server refuses, deleted first.
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
    ) -> Result<()> {
        let name = self.new_name(name)?;
        let newname = self.new_name(newname)?;
        let (dir, newdir) = (self.path_of(parent)?, self.path_of(newparent)?);
        let (from, to) = (remote::join(&dir, name), remote::join(&newdir, newname));
        let src = self
            .listing(&dir)?
            .get(name)
            .cloned()
            .ok_or(Error::NotFound)?;
        if from == to {
            return Ok(());
        }
        self.ensure_on_server(&from)?;
        if src.kind == Kind::Dir && to.starts_with(&format!("{from}/")) {
            return Err(Error::InvalidName);
        }
        let dst = self.listing(&newdir)?.get(newname).cloned();
        if let Some(d) = &dst {
            if noreplace {
                return Err(Error::Exists);
            }
            match (src.kind == Kind::Dir, d.kind == Kind::Dir) {
                (true, false) => return Err(Error::NotDir),
                (false, true) => return Err(Error::IsDir),
                (true, true) => {
                    if !self.listing(&to)?.entries.is_empty() {
                        return Err(Error::NotEmpty);
                    }
                    self.remote.rmdir(&to)?;
                }
                (false, false) => {}
            }
        }
        if let Err(e) = self.remote.rename(&from, &to) {
            let file_target = dst.as_ref().is_some_and(|d| d.kind != Kind::Dir);
            let replaced = file_target && self.replace_by_moving_aside(&from, &to).is_ok();
            if !replaced {
                return Err(self.explain(&dir, name, e, false));
            }
        }
        self.cache.update(&dir, name, None);
        let mut moved = src;
        moved.name = newname.to_string();
        self.cache.update(&newdir, newname, Some(moved));
        self.cache.invalidate_tree(&from);
        self.cache.invalidate_tree(&to);
        if dst.is_some() {
            self.detach(&to);
        }
        self.inodes.rename(&from, &to);
        Ok(())
    }

    /// chmod, chown (only to what is shown), truncate, utimens.
    pub fn setattr(&self, ino: u64, set: SetAttr) -> Result<Attr> {
        let any = set.mode.is_some() || set.size.is_some() || set.mtime.is_some();
        if any && self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        if set.uid.is_some_and(|u| u != self.opts.uid)
            || set.gid.is_some_and(|g| g != self.opts.gid)
        {
            return Err(Error::NotPermitted);
        }
        let path = self.path_of(ino)?;
        if let Some(size) = set.size {
            self.truncate(ino, &path, size)?;
        }
        // Servers may allow a change for files and not for directories.
        let kind = || self.getattr(ino).map(|a| a.kind);
        if let Some(mode) = set.mode {
            self.ensure_on_server(&path)?;
            self.remote.chmod(&path, kind()?, mode)?;
            if let Some(mut e) = self.cached_entry(&path) {
                e.mode = Some(mode & 0o7777);
                self.cache
                    .update(remote::parent(&path), &e.name.clone(), Some(e));
            }
        }
        if let Some(mtime) = set.mtime {
            let deferred = match self.spool_of(ino) {
                Some(e) => {
                    let mut s = e.spool.lock();
                    if s.dirty() {
                        s.mtime = mtime;
                        s.pending_mtime = Some(mtime);
                    }
                    s.dirty()
                }
                None => false,
            };
            if !deferred {
                if let Err(e) = self.remote.set_mtime(&path, kind()?, mtime) {
                    return self.dir_time_not_set(ino, &path, e);
                }
                if let Some(e) = self.spool_of(ino) {
                    e.spool.lock().mtime = mtime;
                }
                if let Some(mut e) = self.cached_entry(&path) {
                    e.mtime = Some(mtime);
                    self.cache
                        .update(remote::parent(&path), &e.name.clone(), Some(e));
                }
            }
        }
        self.getattr(ino)
    }

    /// A time the server refused to set. For a directory it is accepted and not applied
    /// (unless `strict_times`): many FTP servers (vsftpd, pyftpdlib) cannot set a
    /// directory's time at all, it is not data, and failing it made `cp -a`, `tar x` and
    /// `rsync -a` exit non-zero after copying everything. A file's time stays an error:
    /// `rsync` relies on it to know the file is up to date. Only a refusal is accepted,
    /// not a network failure or a timeout.
    fn dir_time_not_set(&self, ino: u64, path: &str, e: Error) -> Result<Attr> {
        let refused = matches!(e, Error::Unsupported)
            || matches!(e, Error::Reply { code, .. } if (500..600).contains(&code));
        if !refused || self.opts.strict_times {
            return Err(e);
        }
        let attr = self.getattr(ino)?;
        if attr.kind != Kind::Dir {
            return Err(e);
        }
        let first = !self
            .dir_time_logged
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if first {
            log::info!(
                "/{path}: the server cannot set a directory's time ({e}); directory times \
                 are left as the server keeps them (-o strict_times makes this an error)"
            );
        } else {
            log::debug!("/{path}: directory time not set: {e}");
        }
        Ok(attr)
    }

    /// With a writer open the spool is cut and uploaded at its flush; `truncate(2)` of a
    /// file nobody has open is uploaded at once, since no flush will follow.
    fn truncate(&self, ino: u64, path: &str, size: u64) -> Result<()> {
        if let Some(e) = self.spool_of(ino) {
            let mut s = e.spool.lock();
            if size != s.len {
                self.stop_stream(&mut s);
            }
            if size > 0 {
                self.fill(ino, &mut s)?;
            }
            return s.truncate(size);
        }
        let entry = self.entry(path)?;
        if entry.kind == Kind::Dir {
            return Err(Error::IsDir);
        }
        if entry.size == size {
            return Ok(());
        }
        let mut s = Spool::new(&self.opts.spool_dir, entry.size)?;
        if size > 0 {
            self.fill(ino, &mut s)?;
        }
        s.truncate(size)?;
        self.upload_spool(ino, path, &mut s, entry.size > 0)
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
    /// Whether the server will allow a change is only known when it is tried.
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
