//! Write-back: `close` returns once the data is safe on local disk; uploads run behind it.
//!
//! By default `close` waits for the server, so `cp -r`, `tar x` and `rsync`, which close
//! each file before opening the next, pay at least one round trip per file, one file at a
//! time. With `-o writeback`, `close` (FUSE `flush`) journals the file instead (the spool's
//! bytes copied and fsync'ed, a durable record: see [`super::journal`]) and queues it; worker
//! threads, as many as the pool has connections, upload the queue in parallel, oldest first
//! (files of one directory start in the order they were closed). Every guarantee that can be
//! kept is kept:
//! - uploads are the ordinary ones of the spool: APPE of a tail, else the whole file, to a
//!   temporary name renamed into place when it replaces content, in place when the file is
//!   new or was empty (nothing to lose; two round trips fewer per file). A crash can leave
//!   a cut copy of our own upload under the real name, which the replay recognises as a
//!   prefix of ours and finishes;
//! - the spool stays until the upload lands: `stat`, listings and reads show the local
//!   version meanwhile;
//! - `fsync` of a file waits for its upload and returns its errno; `fsync` of the mount's
//!   root directory (`sync MOUNTPOINT`) waits for the whole queue and returns the first error
//!   since the last such wait (the kernel sends nothing to a FUSE daemon for `syncfs`);
//! - a server that cannot be reached keeps the upload queued, retried with growing waits;
//!   any other failure (after the remote's own retries) moves the data to the recovery
//!   directory, logged at error level, and is named by `ftpfs umount`;
//! - past `writeback_max` queued bytes, or past the open-file budget, `close` uploads
//!   itself, as without write-back.
//!
//! The queue never holds its lock across network I/O; a worker holds the file's spool lock
//! during its upload, as `close` does without write-back, so a write to that file waits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};

use super::journal::Journal;
use crate::error::{Error, Result};

mod stats;
pub use stats::{QueueStats, STATS_IOCTL, STATS_SIZE};

/// A directory's mode and time, queued (see [`super::dirattrs`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirAttrs {
    pub mode: Option<u32>,
    pub time: Option<SystemTime>,
}

impl DirAttrs {
    /// These, with what `newer` sets replacing them.
    pub fn and(self, newer: DirAttrs) -> DirAttrs {
        DirAttrs {
            mode: newer.mode.or(self.mode),
            time: newer.time.or(self.time),
        }
    }
}

/// The longest wait before a queued upload to an unreachable server is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One file's queued upload, one directory's queued `mkdir` (see [`super::mkdir`]), or one
/// directory's mode and time, set once everything queued beneath it has landed
/// ([`super::dirattrs`]).
pub struct Job {
    /// The file's inode, or a directory's key ([`super::mkdir`]).
    pub ino: u64,
    /// A queued `mkdir`: nothing beneath its path starts before it is done.
    pub(super) dir: bool,
    /// A directory's mode and time: it starts only when nothing at or beneath its path is
    /// queued or running (an upload into a directory changes its time on the server, and
    /// one into a directory made read-only fails).
    pub(super) attrs: Option<DirAttrs>,
    /// Order: the oldest queued file goes first.
    seq: u64,
    /// Its journal records (the newest replaced the older ones, which stay listed until the
    /// upload lands).
    pub(super) records: Vec<u64>,
    bytes: u64,
    since: Instant,
    /// Failed attempts because the server could not be reached.
    attempts: u32,
    not_before: Instant,
    pub(super) path: String,
}

#[derive(Default)]
struct State {
    queued: BTreeMap<u64, Job>,
    by_ino: HashMap<u64, u64>,
    /// The paths of the queued or running `mkdir`s: work beneath them waits.
    dirs: HashSet<String>,
    /// Jobs being run: inode or key → (bytes, queued since, path).
    running: HashMap<u64, (u64, Instant, String)>,
    bytes: u64,
    next_seq: u64,
    failed: Vec<(String, PathBuf)>,
    /// Directories whose queued `mkdir` failed for good: path and why.
    refused_dirs: Vec<(String, String)>,
    /// A failure per inode, for the next `fsync` of that file.
    unreported: HashMap<u64, (i32, String)>,
    /// The first failure since the last wait for the whole queue.
    first_error: Option<(i32, String)>,
    stopping: bool,
    /// The server could not be reached: no upload starts before this (one probe at a time,
    /// not the whole queue hammering it).
    paused_until: Option<Instant>,
    /// When an upload last found the server unreachable.
    unreachable_at: Option<Instant>,
    /// Unreachable findings in a row, for the growing wait.
    outage: u32,
}

impl State {
    /// Files and directories queued or running; a directory's attributes are not one.
    fn files(&self) -> usize {
        let times = self.queued.values().filter(|j| j.attrs.is_some()).count();
        self.queued.len() + self.running.len() - times
    }

    /// Whether a job other than `except` is queued or running at or beneath `path`.
    fn busy_at_or_beneath(&self, path: &str, except: u64) -> bool {
        let prefix = format!("{path}/");
        let under = |p: &str| path.is_empty() || p == path || p.starts_with(&prefix);
        self.queued
            .values()
            .any(|j| j.ino != except && under(&j.path))
            || self
                .running
                .iter()
                .any(|(&k, r)| k != except && under(&r.2))
    }

    /// Whether a queued `mkdir` of a directory above `path` is not done yet.
    fn waits_for_a_dir(&self, path: &str) -> bool {
        if self.dirs.is_empty() {
            return false;
        }
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if self.dirs.contains(p) {
                return true;
            }
        }
        false
    }

    /// Nothing can move: no upload runs, and one found the server unreachable since
    /// `since`.
    fn stalled_since(&self, since: Instant) -> bool {
        self.running.is_empty() && self.unreachable_at.is_some_and(|t| t >= since)
    }
}

/// How a job ended.
pub enum Outcome {
    Done,
    /// The server could not be reached: queue it again.
    Retry(String),
    /// For good; its data is at `kept` (the recovery directory, or still the journal).
    Failed {
        path: String,
        kept: PathBuf,
        errno: i32,
        text: String,
        in_journal: bool,
    },
}

pub struct Queue {
    journal: Journal,
    max_bytes: u64,
    max_files: usize,
    state: Mutex<State>,
    changed: Condvar,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Queue {
    pub fn new(journal: Journal, max_bytes: u64, max_files: usize) -> Queue {
        Queue {
            journal,
            max_bytes,
            max_files,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            workers: Mutex::new(Vec::new()),
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether `bytes` more fit in the queue; if not, `close` uploads itself.
    pub fn fits(&self, bytes: u64) -> bool {
        let st = self.state.lock();
        st.bytes.saturating_add(bytes) <= self.max_bytes && st.files() < self.max_files
    }

    /// Queues `ino`'s upload for journal record `record` of `bytes`. A file queued already
    /// keeps its place; its older records are superseded by the new one and removed.
    pub fn add(&self, ino: u64, path: &str, record: u64, bytes: u64) {
        let mut st = self.state.lock();
        let seq = st.by_ino.get(&ino).copied();
        match seq.and_then(|s| st.queued.get_mut(&s)) {
            Some(job) => {
                let old = job.bytes;
                for id in job.records.drain(..) {
                    self.journal.remove(id);
                }
                job.records.push(record);
                job.bytes = bytes;
                job.path = path.to_string();
                st.bytes = st.bytes - old + bytes;
            }
            None => {
                let seq = st.next_seq;
                st.next_seq += 1;
                let now = Instant::now();
                st.queued.insert(
                    seq,
                    Job {
                        ino,
                        dir: false,
                        attrs: None,
                        seq,
                        records: vec![record],
                        bytes,
                        since: now,
                        attempts: 0,
                        not_before: now,
                        path: path.to_string(),
                    },
                );
                st.by_ino.insert(ino, seq);
                st.bytes += bytes;
            }
        }
        self.changed.notify_all();
    }

    /// Queues the `mkdir` of `path` (key `key`, journal record `record`): nothing queued
    /// beneath `path` starts before it is done.
    pub fn add_dir(&self, key: u64, path: &str, record: u64) {
        let mut st = self.state.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let now = Instant::now();
        st.queued.insert(
            seq,
            Job {
                ino: key,
                dir: true,
                attrs: None,
                seq,
                records: vec![record],
                bytes: 0,
                since: now,
                attempts: 0,
                not_before: now,
                path: path.to_string(),
            },
        );
        st.by_ino.insert(key, seq);
        st.dirs.insert(path.to_string());
        self.changed.notify_all();
    }

    /// Queues setting the mode and time of directory `path` (key `key`), to run once
    /// nothing else is queued or running at or beneath it; what is queued for `key` already
    /// is updated. Not journaled: a crash loses it, and the directory keeps the server's.
    pub fn add_attrs(&self, key: u64, path: &str, attrs: DirAttrs) {
        let mut st = self.state.lock();
        if let Some(job) = st
            .by_ino
            .get(&key)
            .copied()
            .and_then(|s| st.queued.get_mut(&s))
        {
            job.attrs = Some(job.attrs.unwrap_or_default().and(attrs));
            self.changed.notify_all();
            return;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let now = Instant::now();
        st.queued.insert(
            seq,
            Job {
                ino: key,
                dir: false,
                attrs: Some(attrs),
                seq,
                records: Vec::new(),
                bytes: 0,
                since: now,
                attempts: 0,
                not_before: now,
                path: path.to_string(),
            },
        );
        st.by_ino.insert(key, seq);
        self.changed.notify_all();
    }

    /// Whether anything is queued or running at or beneath `path`.
    pub fn busy_beneath(&self, path: &str) -> bool {
        self.state.lock().busy_at_or_beneath(path, u64::MAX)
    }

    /// Whether `ino` has an upload queued or running.
    pub fn has(&self, ino: u64) -> bool {
        let st = self.state.lock();
        st.by_ino.contains_key(&ino) || st.running.contains_key(&ino)
    }

    /// The next job for a worker: the oldest whose file is not being uploaded and whose
    /// wait is over. `None` once the queue stops.
    fn next(&self) -> Option<Job> {
        let mut st = self.state.lock();
        loop {
            if st.stopping {
                return None;
            }
            let now = Instant::now();
            let paused = st.paused_until.filter(|t| *t > now);
            let pick = st
                .queued
                .values()
                .filter(|_| paused.is_none())
                .find(|j| {
                    j.not_before <= now
                        && !st.running.contains_key(&j.ino)
                        && !st.waits_for_a_dir(&j.path)
                        && (j.attrs.is_none() || !st.busy_at_or_beneath(&j.path, j.ino))
                })
                .map(|j| j.seq);
            if let Some(seq) = pick {
                let job = st.queued.remove(&seq).expect("picked from the map");
                st.by_ino.remove(&job.ino);
                st.running
                    .insert(job.ino, (job.bytes, job.since, job.path.clone()));
                return Some(job);
            }
            let wake = st
                .queued
                .values()
                .map(|j| j.not_before)
                .chain(paused)
                .filter(|t| *t > now)
                .min()
                .map_or(Duration::from_secs(1), |t| t - now);
            self.changed
                .wait_for(&mut st, wake.min(Duration::from_secs(1)));
        }
    }

    /// Takes `ino`'s upload for an `fsync`: waits while a worker uploads it, then takes the
    /// queued job (or an empty one) and marks the file busy, so no worker starts it.
    pub fn claim(&self, ino: u64) -> Job {
        let mut st = self.state.lock();
        // A worker's upload is bounded by the remote's deadline; `finish` wakes us.
        while st.running.contains_key(&ino) {
            self.changed.wait_for(&mut st, Duration::from_secs(1));
        }
        let now = Instant::now();
        let job = match st.by_ino.remove(&ino) {
            Some(seq) => st.queued.remove(&seq).expect("indexed job"),
            None => Job {
                ino,
                dir: false,
                attrs: None,
                seq: u64::MAX,
                records: Vec::new(),
                bytes: 0,
                since: now,
                attempts: 0,
                not_before: now,
                path: String::new(),
            },
        };
        st.running
            .insert(ino, (job.bytes, job.since, job.path.clone()));
        job
    }

    /// A job ended (see [`Outcome`]).
    pub fn finish(&self, mut job: Job, outcome: Outcome) {
        let mut st = self.state.lock();
        st.running.remove(&job.ino);
        st.bytes -= job.bytes;
        if job.dir && !matches!(outcome, Outcome::Retry(_)) {
            st.dirs.remove(&job.path);
        }
        match outcome {
            Outcome::Done => {
                for id in &job.records {
                    self.journal.remove(*id);
                }
                st.paused_until = None;
                st.outage = 0;
            }
            Outcome::Retry(_) if job.records.is_empty() => {}
            Outcome::Retry(_) => {
                job.attempts += 1;
                st.outage += 1;
                let now = Instant::now();
                let wait = Duration::from_secs(1u64 << st.outage.min(6)).min(MAX_BACKOFF);
                job.not_before = now;
                st.paused_until = Some(now + wait);
                st.unreachable_at = Some(now);
                let newer = st.by_ino.get(&job.ino).copied();
                // Written and closed again meanwhile: one job, the older place, the newer
                // record (which replaces the older ones).
                if let Some(newer) = newer.and_then(|s| st.queued.remove(&s)) {
                    for id in job.records.drain(..) {
                        self.journal.remove(id);
                    }
                    job.records = newer.records;
                    job.bytes = newer.bytes;
                    st.bytes -= newer.bytes;
                }
                st.bytes += job.bytes;
                st.by_ino.insert(job.ino, job.seq);
                st.queued.insert(job.seq, job);
            }
            Outcome::Failed {
                path,
                kept,
                errno,
                text,
                in_journal,
            } => {
                if !in_journal {
                    for id in &job.records {
                        self.journal.remove(*id);
                    }
                }
                // A directory holds no data: the files beneath it are named, each with
                // where its data went.
                if !job.records.is_empty() && !job.dir {
                    st.failed.push((path, kept));
                } else if job.dir {
                    st.refused_dirs.push((path, text.clone()));
                }
                st.unreported.insert(job.ino, (errno, text.clone()));
                st.first_error.get_or_insert((errno, text));
            }
        }
        self.changed.notify_all();
    }

    /// The failure of `ino`'s queued upload that no `fsync` has reported yet.
    pub fn take_error(&self, ino: u64) -> Option<Error> {
        let (errno, text) = self.state.lock().unreported.remove(&ino)?;
        Some(Error::WriteBack { errno, text })
    }

    /// Waits until every queued upload (and directory time) has landed or failed, or until the rest found the
    /// server unreachable once more (uploads waiting for it are tried again at once, not at
    /// the end of their backoff); returns the first failure since the last wait.
    pub fn wait_idle(&self) -> Result<()> {
        let mut st = self.state.lock();
        let start = Instant::now();
        for j in st.queued.values_mut() {
            j.not_before = start;
        }
        st.paused_until = None;
        self.changed.notify_all();
        loop {
            if (st.queued.is_empty() && st.running.is_empty()) || st.stalled_since(start) {
                break;
            }
            self.changed.wait_for(&mut st, Duration::from_secs(1));
        }
        if let Some((errno, text)) = st.first_error.take() {
            return Err(Error::WriteBack { errno, text });
        }
        match st.queued.values().next() {
            Some(j) => Err(Error::WriteBack {
                errno: libc::EIO,
                text: format!(
                    "{} file(s) wait for the server, {} first; kept in the journal",
                    st.files(),
                    j.path
                ),
            }),
            None => Ok(()),
        }
    }

    pub fn stats(&self) -> QueueStats {
        let st = self.state.lock();
        let oldest = st
            .queued
            .values()
            .map(|j| j.since)
            .chain(st.running.values().map(|r| r.1))
            .min();
        QueueStats {
            files: st.files(),
            bytes: st.bytes,
            oldest: oldest.map(|t| t.elapsed()),
            failed: st.failed.clone(),
            refused_dirs: st.refused_dirs.clone(),
            // While the server cannot be reached, everything queued waits for it.
            waiting: st
                .queued
                .values()
                .filter(|j| st.paused_until.is_some() && j.attrs.is_none())
                .map(|j| {
                    let data = j.records.last().map(|id| self.journal.file_path(*id));
                    (j.path.clone(), data.unwrap_or_default())
                })
                .collect(),
        }
    }

    /// Starts a worker thread running `serve` (which calls [`Queue::serve`]).
    pub fn spawn(&self, serve: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let handle = std::thread::Builder::new()
            .name("ftpfs-writeback".into())
            .spawn(serve)?;
        self.workers.lock().push(handle);
        Ok(())
    }

    /// A worker's loop: runs `work` on each job until the queue stops.
    pub fn serve(&self, work: impl Fn(Job)) {
        while let Some(job) = self.next() {
            work(job);
        }
    }

    /// The end of the session: waits as [`Queue::wait_idle`] does, stops the workers, and
    /// logs what stays in the journal for the next mount.
    pub fn drain(&self) {
        let waited = self.wait_idle();
        self.state.lock().stopping = true;
        self.changed.notify_all();
        for w in self.workers.lock().drain(..) {
            let _ = w.join();
        }
        if let Err(e) = waited {
            log::error!("write-back at the end of the session: {e}");
        }
        self.journal.tidy();
        for (path, data) in self.stats().waiting {
            log::error!(
                "{path}: not uploaded (the server could not be reached); its data stays in {} \
                 and the next mount of this server uploads it",
                data.display()
            );
        }
    }
}

/// How many files may wait in the queue: each holds its spool open. The soft limit on open
/// files is raised to the hard one (1024 is a common soft limit, far below what a `cp -r`
/// of small files queues), and half of it is the budget; past it `close` uploads itself.
pub fn open_file_budget() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 256;
    }
    let want = lim.rlim_max.min(1 << 20);
    if lim.rlim_cur < want {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct; raising the soft limit up to the hard one is
        // always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = want;
        }
    }
    (lim.rlim_cur as usize / 2).max(16)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::upload::journal::{Base, Record};

    fn queue(dir: &std::path::Path, max_bytes: u64) -> Queue {
        Queue::new(Journal::open(dir.join("j")).unwrap(), max_bytes, 100)
    }

    impl Queue {
        /// The next job, its backoff waived (a sync does that).
        fn next_now(&self) -> Job {
            let mut st = self.state.lock();
            st.paused_until = None;
            for j in st.queued.values_mut() {
                j.not_before = Instant::now();
            }
            drop(st);
            self.next().unwrap()
        }
    }

    fn journaled(q: &Queue, path: &str, data: &[u8]) -> u64 {
        let rec = Record {
            id: 0,
            path: path.into(),
            base: Base::New,
            tail: false,
            len: data.len() as u64,
            pid: 1,
            mtime: None,
            mode: None,
            offset: 0,
            dir: false,
        };
        q.journal().write(rec, &mut &data[..]).unwrap().id
    }

    #[test]
    fn a_newer_close_of_a_queued_file_replaces_its_record_and_keeps_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path(), 1 << 20);
        let a1 = journaled(&q, "a", b"one");
        q.add(1, "a", a1, 3);
        let b = journaled(&q, "b", b"bee");
        q.add(2, "b", b, 3);
        let a2 = journaled(&q, "a", b"three");
        q.add(1, "a", a2, 5);
        assert!(!q.journal().holds(a1), "superseded");
        let s = q.stats();
        assert_eq!((s.files, s.bytes), (2, 8));
        let first = q.next().unwrap();
        assert_eq!(
            (first.ino, first.records.clone()),
            (1, vec![a2]),
            "oldest first"
        );
        q.finish(first, Outcome::Done);
        assert!(!q.journal().holds(a2));
        assert_eq!(q.stats().files, 1);
    }

    #[test]
    fn nothing_beneath_a_queued_mkdir_starts_before_it_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path(), 1 << 20);
        let d = journaled(&q, "d", b"");
        q.add_dir(1 << 62, "d", d);
        let inner = journaled(&q, "d/e", b"");
        q.add_dir((1 << 62) + 1, "d/e", inner);
        let f = journaled(&q, "d/e/f", b"f");
        q.add(1, "d/e/f", f, 1);
        let x = journaled(&q, "x", b"x");
        q.add(2, "x", x, 1);
        let first = q.next().unwrap();
        assert!(first.dir && first.path == "d");
        // While `d` is being made, only what is not beneath it may start.
        let second = q.next().unwrap();
        assert_eq!(second.path, "x");
        q.finish(second, Outcome::Done);
        // Still unreachable: `d` stays queued, and so does everything beneath it.
        q.finish(first, Outcome::Retry("connection refused".into()));
        let again = q.next_now();
        assert!(again.dir && again.path == "d", "the mkdir first, again");
        q.finish(again, Outcome::Done);
        assert!(!q.journal().holds(d));
        let nested = q.next_now();
        assert!(nested.dir && nested.path == "d/e");
        q.finish(nested, Outcome::Done);
        let file = q.next_now();
        assert_eq!((file.ino, file.dir), (1, false));
        q.finish(file, Outcome::Done);
        assert_eq!(q.stats().files, 0);
    }

    #[test]
    fn a_directorys_mode_and_time_start_only_once_nothing_at_or_beneath_it_is_queued_or_running() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path(), 1 << 20);
        let d = journaled(&q, "d", b"");
        q.add_dir(1 << 62, "d", d);
        let f = journaled(&q, "d/sub/f", b"f");
        q.add(1, "d/sub/f", f, 1);
        let t1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t2 = t1 + Duration::from_secs(60);
        let mode = |mode| DirAttrs { mode, time: None };
        let time = |time| DirAttrs { mode: None, time };
        q.add_attrs((1 << 62) + 1, "d", time(Some(t1)));
        // A later change of the same directory updates that job: one job, both changes.
        q.add_attrs((1 << 62) + 1, "d", mode(Some(0o755)));
        q.add_attrs((1 << 62) + 1, "d", time(Some(t2)));
        let other = journaled(&q, "dx", b"x");
        q.add(2, "dx", other, 1);
        assert_eq!(q.stats().files, 3, "a directory time is not a file");
        let mkdir = q.next_now();
        assert!(mkdir.dir && mkdir.path == "d");
        // `dx` is not beneath `d`: it may start; the time may not, with `d` being made.
        let second = q.next_now();
        assert_eq!(second.path, "dx");
        q.finish(mkdir, Outcome::Done);
        let file = q.next_now();
        assert_eq!(file.path, "d/sub/f");
        // The upload beneath still runs: nothing is ready.
        assert!(q.state.lock().queued.values().all(|j| j.attrs.is_some()));
        assert!(q.busy_beneath("d") && q.busy_beneath("") && !q.busy_beneath("d/sub/g"));
        q.finish(file, Outcome::Done);
        let attrs = q.next_now();
        assert_eq!(attrs.path, "d");
        assert_eq!(
            attrs.attrs,
            Some(DirAttrs {
                mode: Some(0o755),
                time: Some(t2)
            })
        );
        q.finish(attrs, Outcome::Done);
        q.finish(second, Outcome::Done);
        assert!(q.wait_idle().is_ok());
        assert!(!q.busy_beneath(""));
    }

    #[test]
    fn past_the_byte_limit_nothing_more_fits() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path(), 10);
        assert!(q.fits(10));
        let a = journaled(&q, "a", b"12345678");
        q.add(1, "a", a, 8);
        assert!(q.fits(2));
        assert!(!q.fits(3));
    }

    #[test]
    fn an_unreachable_server_pauses_the_queue_and_a_sync_stops_waiting_once_it_is_found_so() {
        let dir = tempfile::tempdir().unwrap();
        let q = Arc::new(queue(dir.path(), 1 << 20));
        for (ino, name) in [(1, "a"), (2, "b")] {
            let id = journaled(&q, name, b"x");
            q.add(ino, name, id, 1);
        }
        let job = q.next().unwrap();
        q.finish(job, Outcome::Retry("connection refused".into()));
        let s = q.stats();
        assert_eq!(s.files, 2);
        assert_eq!(s.waiting.len(), 2, "everything waits for the server");
        // A sync tries again at once; a worker finds the server still unreachable.
        let worker = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                let job = q.next().unwrap();
                q.finish(job, Outcome::Retry("connection refused".into()));
            })
        };
        let err = q.wait_idle().unwrap_err();
        assert_eq!(err.errno(), libc::EIO);
        worker.join().unwrap();
        assert_eq!(q.stats().files, 2, "still queued, still journaled");
    }

    #[test]
    fn a_failure_reaches_the_files_fsync_once_and_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(dir.path(), 1 << 20);
        let a = journaled(&q, "a", b"x");
        q.add(7, "a", a, 1);
        let job = q.next().unwrap();
        q.finish(
            job,
            Outcome::Failed {
                path: "a".into(),
                kept: "/rec/a".into(),
                errno: libc::EDQUOT,
                text: "quota".into(),
                in_journal: false,
            },
        );
        assert_eq!(q.take_error(7).unwrap().errno(), libc::EDQUOT);
        assert!(q.take_error(7).is_none());
        assert_eq!(q.wait_idle().unwrap_err().errno(), libc::EDQUOT);
        assert!(q.wait_idle().is_ok());
        assert_eq!(q.stats().failed, vec![("a".into(), "/rec/a".into())]);
        assert!(!q.journal().holds(a), "the data is in recovery");
    }
}
