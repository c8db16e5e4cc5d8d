//! The write protocol: how what programs write reaches the server, and how they learn
//! whether it did.
//!
//! FTP cannot write at an offset: it uploads a whole file (STOR) or adds to its end (APPE),
//! and a STOR onto a file truncates it first. Programs write anywhere, read back what they
//! wrote, truncate, and expect `close(2)` (or `fsync`) to report whether it all reached the
//! server, while other clients must never see a half-written replacement. So:
//! - every file open for writing has one local spool shared by its handles ([`spool`]);
//!   writes and reads of it go there, and `flush`/`fsync` upload it: APPE of the new tail
//!   when that is all that changed, else the whole file;
//! - a file written from start to end is uploaded *while* it is written ([`streaming`]);
//! - an upload that replaces content goes to a temporary name and is renamed into place,
//!   with fallbacks for servers that refuse that rename ([`atomic`]);
//! - a file created in a directory that already took one waits for its first flush to reach
//!   the server (one transfer per new file, not two); until then it is *pending*, and this
//!   mount's listings show it ([`create`]);
//! - the last `release` of a file whose upload failed tries once more, and if nobody can be
//!   told any more its data goes to the recovery directory, logged at error level.
//!
//! This module works on a [`Remote`], the listing cache and paths resolved through the inode
//! table; it never sees the filesystem core ([`crate::fs`]), which keeps namespace,
//! attributes and reads and calls in here through [`Writes`].

pub mod atomic;
mod copy;
pub mod create;
mod dirattrs;
pub mod journal;
mod mkdir;
pub mod queue;
mod replay;
pub mod spool;
pub mod streaming;
mod writeback;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use self::spool::{RemoteReaderDyn, Spool};
use crate::cache::{DirCache, Listing};
use crate::error::{Error, Result};
use crate::inode::InodeTable;
use crate::remote::{self, Kind, Remote, RemoteEntry};

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

/// The modes servers commonly give a new file and a new directory (umask 022).
pub const NEW_FILE_MODE: u32 = 0o644;
pub const NEW_DIR_MODE: u32 = 0o755;

/// The spool of one inode and how many write handles share it.
struct SpoolEntry {
    /// Held across the upload on purpose: it is this file's own lock, and a write to the
    /// file must wait until the upload of its previous content is decided. Taken through
    /// [`SpoolEntry::lock`] only, so that `shown` follows it.
    spool: Mutex<Spool>,
    /// The spool's size and mtime when its lock was last let go: what `stat`, lookups and
    /// listings show while the file is open for writing, without waiting for an upload
    /// that holds the lock (`ls -l` during a big `cp`).
    shown: Mutex<(u64, SystemTime)>,
    writers: AtomicUsize,
    /// The server's file had content when the spool was made: replace it atomically.
    replaces: bool,
    /// With write-back: the queue holds a reference on the inode, whose path it needs
    /// after the kernel forgot the closed file (see `upload::writeback`).
    held: AtomicBool,
}

impl SpoolEntry {
    fn new(spool: Spool, replaces: bool) -> SpoolEntry {
        SpoolEntry {
            shown: Mutex::new((spool.len, spool.mtime)),
            spool: Mutex::new(spool),
            writers: AtomicUsize::new(1),
            replaces,
            held: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> SpoolGuard<'_> {
        SpoolGuard {
            spool: self.spool.lock(),
            shown: &self.shown,
        }
    }
}

/// The spool's lock; letting it go records the size and mtime others are shown.
struct SpoolGuard<'a> {
    spool: parking_lot::MutexGuard<'a, Spool>,
    shown: &'a Mutex<(u64, SystemTime)>,
}

impl std::ops::Deref for SpoolGuard<'_> {
    type Target = Spool;
    fn deref(&self) -> &Spool {
        &self.spool
    }
}

impl std::ops::DerefMut for SpoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut Spool {
        &mut self.spool
    }
}

impl Drop for SpoolGuard<'_> {
    fn drop(&mut self) {
        *self.shown.lock() = (self.spool.len, self.spool.mtime);
    }
}

/// The state of the write path of one mount.
pub struct Uploader {
    /// Where spool files live.
    spool_dir: PathBuf,
    /// Where data that could not be uploaded is kept when nobody is left to tell.
    recovery_dir: PathBuf,
    mode: UploadMode,
    /// How long a directory where a create worked counts as writable (see
    /// [`Writes::create_on_server`]).
    proven_for: Duration,
    spools: Mutex<HashMap<u64, Arc<SpoolEntry>>>,
    /// Files created here and not yet uploaded: path → inode. Listings keep showing them.
    pending: Mutex<HashMap<String, u64>>,
    /// Directories where a create worked recently.
    writable_dirs: Mutex<HashMap<String, Instant>>,
    /// Numbers the temporary names of uploads.
    temp_names: AtomicU64,
    /// The server refused `SITE CHMOD` as not implemented: new files and directories keep
    /// the mode it gives them, and it is not asked again.
    no_site_chmod: AtomicBool,
    /// `-o writeback`: the queue `close` hands uploads to (see [`queue`]).
    queue: Option<Arc<queue::Queue>>,
    /// Directories this mount made this session (see [`Writes::dir_made`]).
    made: Mutex<HashSet<String>>,
    /// Directories made here whose `mkdir` is queued (write-back, see [`mkdir`]).
    queued_dirs: Mutex<HashMap<String, mkdir::QueuedDir>>,
    /// Directories whose queued `mkdir` the server refused: errno and text, for what was
    /// queued beneath them.
    refused_dirs: Mutex<HashMap<String, (i32, String)>>,
    /// Keys of queued `mkdir`s and directory times in the queue (above every inode
    /// number).
    dir_keys: AtomicU64,
    /// Directory modes and times queued until what is beneath has landed (write-back, see
    /// [`dirattrs`]): path → (queue key, what is queued).
    dir_attrs: Mutex<HashMap<String, (u64, queue::DirAttrs)>>,
    /// A queued directory time was refused: said once.
    dir_time_refused: AtomicBool,
}

impl Uploader {
    /// `ttl` is how long listings stay valid: a directory proven writable stays so as long.
    pub fn new(spool_dir: PathBuf, recovery_dir: PathBuf, mode: UploadMode, ttl: Duration) -> Self {
        Uploader {
            spool_dir,
            recovery_dir,
            mode,
            proven_for: ttl.max(Duration::from_secs(1)),
            spools: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            writable_dirs: Mutex::new(HashMap::new()),
            temp_names: AtomicU64::new(0),
            no_site_chmod: AtomicBool::new(false),
            queue: None,
            made: Mutex::new(HashSet::new()),
            queued_dirs: Mutex::new(HashMap::new()),
            refused_dirs: Mutex::new(HashMap::new()),
            dir_keys: AtomicU64::new(mkdir::FIRST_KEY),
            dir_attrs: Mutex::new(HashMap::new()),
            dir_time_refused: AtomicBool::new(false),
        }
    }

    /// Turns write-back on (before the mount serves anything).
    pub fn set_queue(&mut self, queue: queue::Queue) {
        self.queue = Some(Arc::new(queue));
    }

    pub fn queue(&self) -> Option<&Arc<queue::Queue>> {
        self.queue.as_ref()
    }

    /// The write path over `remote`, `cache` and the paths of `inodes`.
    pub fn with<'a, R: Remote>(
        &'a self,
        remote: &'a R,
        cache: &'a DirCache,
        inodes: &'a InodeTable,
    ) -> Writes<'a, R> {
        Writes {
            remote,
            cache,
            inodes,
            up: self,
        }
    }
}

/// The write path at work: the [`Uploader`]'s state with what it acts on.
pub struct Writes<'a, R: Remote> {
    remote: &'a R,
    cache: &'a DirCache,
    /// Only to resolve an inode to its current path, at the moment it is needed (a rename
    /// may move an open file).
    inodes: &'a InodeTable,
    up: &'a Uploader,
}

impl<R: Remote> Writes<'_, R> {
    /// The listing of `dir` as this mount shows it: from the cache or the server, with the
    /// files created here and not uploaded yet.
    pub fn listing(&self, dir: &str) -> Result<Arc<Listing>> {
        if let Some(l) = self.cache.get(dir) {
            return Ok(l);
        }
        let lock = self.cache.fetch_lock(dir);
        let _guard = lock.lock();
        if let Some(l) = self.cache.get(dir) {
            return Ok(l);
        }
        let token = self.cache.token();
        if self.is_queued_dir(dir) {
            // Made here, its `mkdir` still queued: the server would say 550. What is in it
            // was made here too.
            let mut entries = Vec::new();
            self.add_pending(dir, &mut entries);
            return Ok(self.cache.insert(dir, Listing::new(entries), token));
        }
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

    /// A file created here exists on the server only after its first upload; operations
    /// that act on the server's file (rename, chmod) upload it, and all pending files
    /// below it, first.
    pub fn ensure_on_server(&self, path: &str) -> Result<()> {
        // Queued `mkdir`s above, of, and beneath `path` first (write-back).
        self.ensure_dirs(path)?;
        self.ensure_dirs_below(path)?;
        let prefix = format!("{path}/");
        let below = |p: &str| p == path || p.starts_with(&prefix);
        let mut inos: Vec<u64> = self
            .up
            .pending
            .lock()
            .iter()
            .filter(|(p, _)| below(p))
            .map(|(_, &i)| i)
            .collect();
        if let Some(q) = &self.up.queue {
            // A queued upload (write-back) names the old path in its journal record: it
            // lands before the rename, not after it under the new name.
            let spooled: Vec<u64> = self.up.spools.lock().keys().copied().collect();
            inos.extend(
                spooled
                    .into_iter()
                    .filter(|&i| q.has(i) && self.inodes.path(i).is_some_and(|p| below(&p))),
            );
            inos.sort_unstable();
            inos.dedup();
            for ino in inos {
                self.fsync(ino)?;
            }
            // Then the directory modes and times queued there, which wait for those uploads.
            self.dir_attrs_now(path);
            return Ok(());
        }
        for ino in inos {
            self.upload(ino)?;
        }
        Ok(())
    }

    fn spool_of(&self, ino: u64) -> Option<Arc<SpoolEntry>> {
        self.up.spools.lock().get(&ino).cloned()
    }

    /// Whether `ino` is open for writing (or has a spool not yet released).
    pub fn is_open(&self, ino: u64) -> bool {
        self.up.spools.lock().contains_key(&ino)
    }

    /// Size and mtime of a file open for writing: its spool is the truth, clean or not
    /// (after an upload it equals the server).
    pub fn spooled_attr(&self, ino: u64) -> Option<(u64, SystemTime)> {
        let e = self.spool_of(ino)?;
        let shown = *e.shown.lock();
        Some(shown)
    }

    /// A new write handle of `ino`, whose server file has `base` bytes: the inode's spool,
    /// made if needed, with one more writer counted; emptied for `O_TRUNC`.
    pub fn open(&self, ino: u64, base: u64, truncate: bool) -> Result<()> {
        let e = self.writer_spool(ino, base)?;
        if truncate {
            let mut s = e.lock();
            self.stop_stream(&mut s);
            s.truncate(0)?;
        }
        Ok(())
    }

    /// The inode's spool, made if needed, with one more writer counted.
    ///
    /// `base` was read before: a spool seen then may have been dropped since, its upload
    /// landed (a queued append, with write-back), and `base` is then the size before that
    /// upload. A new spool on it would hold a hole where the landed bytes are, and its
    /// `APPE` would send zeros there. So a new spool takes the size our cache has once the
    /// spool is seen gone: an upload updates the cache before its spool is dropped.
    fn writer_spool(&self, ino: u64, base: u64) -> Result<Arc<SpoolEntry>> {
        let existing = |map: &HashMap<u64, Arc<SpoolEntry>>| {
            map.get(&ino).map(|e| {
                e.writers.fetch_add(1, Ordering::SeqCst);
                Arc::clone(e)
            })
        };
        if let Some(e) = existing(&self.up.spools.lock()) {
            return Ok(e);
        }
        let cached = self.inodes.path(ino).and_then(|p| self.cache.entry(&p));
        let base = cached
            .filter(|c| c.kind == Kind::File)
            .map_or(base, |c| c.size);
        let mut map = self.up.spools.lock();
        if let Some(e) = existing(&map) {
            return Ok(e);
        }
        let e = Arc::new(SpoolEntry::new(
            Spool::new(&self.up.spool_dir, base)?,
            base > 0,
        ));
        map.insert(ino, Arc::clone(&e));
        Ok(e)
    }

    /// Downloads the server's content into the spool if an operation needs it.
    fn fill(&self, ino: u64, s: &mut Spool) -> Result<()> {
        if s.filled {
            return Ok(());
        }
        let path = self.inodes.path(ino).ok_or(Error::Stale)?;
        let base = s.base;
        s.fill(|| {
            let r = self.remote.open_reader(&path, base)?;
            Ok(Box::new(r) as Box<dyn RemoteReaderDyn>)
        })
    }

    /// A read of a file open for writing, from its spool (any handle reads the written
    /// data); `None` if it is not open for writing.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Option<Result<remote::Data>> {
        let e = self.spool_of(ino)?;
        let mut s = e.lock();
        if offset < s.base {
            if let Err(err) = self.fill(ino, &mut s) {
                return Some(Err(err));
            }
        }
        Some(s.read_at(offset, size as usize).map(remote::Data::from))
    }

    /// A write into the spool; a write at the end of a file written from its start keeps
    /// (or starts) its streamed upload, any other stops it.
    pub fn write(&self, ino: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let e = self.spool_of(ino).ok_or(Error::Stale)?;
        let mut s = e.lock();
        if offset < s.base {
            self.fill(ino, &mut s)?;
        }
        let at_end = offset == s.len;
        s.write_at(offset, data)?;
        log::trace!("ino {ino}: spool len {} after write", s.len);
        if !at_end {
            self.stop_stream(&mut s);
        } else if let Some(st) = &s.stream {
            st.advance(s.len);
        } else if s.sequential
            && s.base == 0
            && s.len >= streaming::STREAM_MIN
            && self.up.queue.is_none()
        {
            // Not with write-back: its uploads start after close, from the journal's copy.
            self.start_stream(ino, &mut s);
        }
        Ok(data.len() as u32)
    }

    /// `close`: uploads `ino` if it has unsent changes (this is where a failed upload
    /// reaches the program), or with write-back journals and queues it.
    pub fn close(&self, ino: u64) -> Result<()> {
        match (self.spool_of(ino), &self.up.queue) {
            (Some(e), Some(q)) => self.flush_back(ino, &e, q),
            (Some(e), None) => self.upload_entry(ino, &e),
            (None, _) => Ok(()),
        }
    }

    /// `fsync` without write-back, and uploads that cannot wait: uploads `ino` if it has
    /// unsent changes.
    pub fn upload(&self, ino: u64) -> Result<()> {
        match self.spool_of(ino) {
            Some(e) => self.upload_entry(ino, &e),
            None => Ok(()),
        }
    }

    fn upload_entry(&self, ino: u64, e: &SpoolEntry) -> Result<()> {
        let mut s = e.lock();
        if s.orphaned {
            self.stop_stream(&mut s);
        }
        if !s.dirty() || s.orphaned {
            return Ok(());
        }
        let path = self.inodes.path(ino).ok_or(Error::Stale)?;
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
        // Its directory's queued `mkdir` (write-back) first, or the refusal of it.
        self.ensure_dirs(remote::parent(path))?;
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
                self.up.pending.lock().remove(path);
                let wanted_mode = s.pending_mode.take();
                let applied_mode =
                    wanted_mode.and_then(|m| self.apply_new_mode(path, Kind::File, m));
                // A time set while the data was unsent (`cp -p`, `rsync`: futimens before
                // close). The data is on the server either way; a time it refused reaches
                // close(2)/fsync(2), as it would have reached utimens: rsync relies on it.
                let time_set = match s.pending_mtime.take() {
                    Some(t) => self
                        .remote
                        .set_mtime(path, Kind::File, t)
                        .map(|()| s.mtime = t),
                    None => Ok(()),
                };
                if let Err(e) = &time_set {
                    log::warn!("{path}: uploaded, but setting its time failed: {e}");
                }
                let mut entry = self.cache.entry(path).unwrap_or(RemoteEntry {
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
                time_set
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
        if replaces && self.up.mode == UploadMode::Atomic {
            self.replace_atomically(path, s)
        } else {
            self.remote.store(path, &s.upload_from(0))
        }
    }

    /// A write handle of `ino` is gone. When it was the last, unsent data gets one more
    /// upload try; if that fails nobody can be told any more, so the spool is kept in the
    /// recovery directory and its path logged at error level.
    pub fn release(&self, ino: u64) {
        let last = {
            let mut map = self.up.spools.lock();
            match map.get(&ino) {
                // With write-back the spool stays until its upload lands (see `retire`).
                Some(e) if e.writers.fetch_sub(1, Ordering::SeqCst) == 1 => match self.up.queue {
                    Some(_) => Some(Arc::clone(e)),
                    None => map.remove(&ino),
                },
                _ => None,
            }
        };
        match (last, &self.up.queue) {
            (Some(e), Some(q)) => self.release_back(ino, &e, q),
            (Some(e), None) => self.last_release(ino, &e),
            (None, _) => {}
        }
    }

    /// The last release with write-back: unsent data (written by a process whose close did
    /// not upload, or through mmap) is queued; if even that fails, the recovery directory.
    fn release_back(&self, ino: u64, e: &SpoolEntry, q: &queue::Queue) {
        // An error with nothing unsent is a queued upload that failed since: its data was
        // saved and logged then.
        if self.flush_back(ino, e, q).is_err() && e.lock().dirty() && !q.has(ino) {
            self.up.spools.lock().remove(&ino);
            self.last_release(ino, e);
            return;
        }
        self.retire(ino);
    }

    /// The session is over, and no release will come any more. A written file whose last
    /// release never arrived is handled as that release would have been: the kernel drops
    /// the requests still queued when a mount goes away, so an unmount right after a failed
    /// `close` could otherwise lose its data.
    pub fn release_all(&self) {
        if let Some(q) = &self.up.queue {
            // Spools nobody holds are queued already; the others are released now, into the
            // queue, which the end of the session drains.
            let held: Vec<(u64, Arc<SpoolEntry>)> = self
                .up
                .spools
                .lock()
                .iter()
                .filter(|(_, e)| e.writers.swap(0, Ordering::SeqCst) > 0)
                .map(|(&i, e)| (i, Arc::clone(e)))
                .collect();
            for (ino, e) in held {
                self.release_back(ino, &e, q);
            }
            return;
        }
        let left: Vec<(u64, Arc<SpoolEntry>)> = self.up.spools.lock().drain().collect();
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
        let spool = e.lock();
        let path = self.inodes.path(ino).unwrap_or_default();
        if self.up.pending.lock().remove(&path).is_some() {
            // It never reached the server: it must not linger in our listings either.
            self.cache
                .update(remote::parent(&path), remote::basename(&path), None);
        }
        match spool.recover(&self.up.recovery_dir, &path) {
            Ok(p) => {
                log::error!(
                    "{path}: data that could not be uploaded was saved to {}",
                    p.display()
                );
                crate::status::stats().recovered(&path, &p);
            }
            Err(err) => log::error!("{path}: data could not be uploaded nor saved: {err}"),
        }
    }

    /// `ino`'s file is gone from the server: an open spool of it must not bring it back.
    pub fn orphan(&self, ino: u64) {
        if let Some(e) = self.spool_of(ino) {
            let mut s = e.lock();
            s.orphaned = true;
            self.stop_stream(&mut s);
        }
    }

    /// An mtime set on a file open for writing with unsent data: kept and applied after its
    /// upload (see [`Spool::pending_mtime`]). `false` if the file has nothing unsent, and
    /// the time is to be set on the server now.
    pub fn defer_mtime(&self, ino: u64, mtime: SystemTime) -> bool {
        let Some(e) = self.spool_of(ino) else {
            return false;
        };
        let mut s = e.lock();
        if s.dirty() {
            s.mtime = mtime;
            s.pending_mtime = Some(mtime);
        }
        s.dirty()
    }

    /// A mode set on a file created here that has not reached the server yet (`tar x`
    /// sets it before `close`): kept and applied after its first upload, as the mode given
    /// at its creation is (see [`Spool::pending_mode`]). `false` otherwise: the caller sets
    /// it on the server now.
    pub fn defer_mode(&self, ino: u64, path: &str, mode: u32) -> bool {
        if !self.up.pending.lock().contains_key(path) {
            return false;
        }
        let Some(e) = self.spool_of(ino) else {
            return false;
        };
        let mut s = e.lock();
        if s.dirty() {
            s.pending_mode = Some(mode & 0o7777);
        }
        s.dirty()
    }

    /// A time set on the server: an open spool shows it too.
    pub fn mtime_set(&self, ino: u64, mtime: SystemTime) {
        if let Some(e) = self.spool_of(ino) {
            e.lock().mtime = mtime;
        }
    }

    /// `truncate(2)` of a file open for writing: its spool is cut, and uploaded at its
    /// flush. `None` if it is not open for writing.
    pub fn truncate_open(&self, ino: u64, size: u64) -> Option<Result<()>> {
        let e = self.spool_of(ino)?;
        let mut s = e.lock();
        if size != s.len {
            self.stop_stream(&mut s);
        }
        if size > 0 {
            if let Err(err) = self.fill(ino, &mut s) {
                return Some(Err(err));
            }
        }
        if let Err(err) = s.truncate(size) {
            return Some(Err(err));
        }
        drop(s);
        match &self.up.queue {
            // A spool kept only for its queued upload (write-back): no close will come, so
            // the cut is journaled and queued now, as a truncate of a closed file would be
            // uploaded now.
            Some(q) if e.writers.load(Ordering::SeqCst) == 0 => Some(self.flush_back(ino, &e, q)),
            _ => Some(Ok(())),
        }
    }

    /// `truncate(2)` of a file nobody has open, of `base` bytes on the server: uploaded at
    /// once, since no flush will follow.
    pub fn truncate_closed(&self, ino: u64, path: &str, base: u64, size: u64) -> Result<()> {
        let mut s = Spool::new(&self.up.spool_dir, base)?;
        if size > 0 {
            self.fill(ino, &mut s)?;
        }
        s.truncate(size)?;
        self.upload_spool(ino, path, &mut s, base > 0)
    }
}
