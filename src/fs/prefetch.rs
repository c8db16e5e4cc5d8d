//! Walking ahead of the kernel: listings of subdirectories, and small files read whole,
//! fetched on spare connections before they are asked for.
//!
//! Over a real network each listing costs its round trips (`EPSV`, `MLSD`, the data, `226`)
//! and so does each file (`EPSV`, `RETR`, the data, `226`). `find`, `du`, `ls -R` and
//! `rsync` ask for one directory at a time, `grep -r`, `tar c` and `cp -r` read one small
//! file at a time, so a walk was a chain of round trips on one connection while the other
//! connections of the pool stood idle. What the walk will want next is predictable: the
//! subdirectories of a directory it opened, in listing order (fts reads a directory whole,
//! then descends in readdir order, which is our listing's name order), and the files after
//! the one it just read whole. So:
//!
//! - When the kernel opens a directory, its subdirectories are queued for listing, and the
//!   subdirectories of those when their listing arrives, [`DEPTH`] levels below a directory
//!   the kernel opened. Jobs run nearest first in the walk's order (depth-first, by name:
//!   path components compared one by one), on one thread per connection a guess may use
//!   (all but one of the pool's, at most [`MAX_WORKERS`]), so at most that many speculative
//!   commands are outstanding.
//! - When files of a directory are opened in listing order and each read to its end
//!   ([`STREAK`] of them), the next small files (at most [`FILE_MAX`] bytes each,
//!   [`FILES_AHEAD`] files and [`BYTES_MAX`] bytes held or in flight) are read whole into
//!   memory. A streak carries on into the next directory at its first file.
//! - Speculation never delays a request of the kernel: it runs only on connections that are
//!   idle or can be made while another stays free ([`crate::remote::Remote::list_spare`]),
//!   and gives up (the job waits) when there is none. A request that wants what a job is
//!   fetching waits for that job instead of fetching twice: a listing through the cache's
//!   per-directory fetch lock, which the job holds; a file at `open`, at most
//!   [`READ_WAIT`], after which it is read as usual.
//! - Bounded and cancelled: at most [`AHEAD_PER_WORKER`] directories per worker listed
//!   ahead and not opened yet (an `ls -l` of a directory of 1000 subdirectories costs at
//!   most that many listings, 8 with the default 5 connections); jobs, unused listings and unused files are dropped [`KEEP`] after they were
//!   queued or fetched, so a walk that stops stops its prefetch, and when the kernel opens a
//!   directory, whatever comes before it in the walk's order is dropped at once. Listings go to the
//!   listing cache as a demand listing would, so its memory bound holds.
//! - Ready when the walk is: when the kernel opens a directory, or looks up a name in one
//!   not listed yet, the pool logs in all its connections at once
//!   ([`crate::remote::Remote::warm_spare`]), so they are there for the first guesses
//!   instead of being logged in one by one (3 round trips or more each) as guesses find
//!   none. The bytes held against [`BYTES_MAX`] show in `ftpfs status --json`.
//! - No stale bytes: a file read ahead is used only if the listing at `open` still shows
//!   the size and time it was read with, and only whole and of that size; our own writes,
//!   renames and deletions of it drop it (`prefetch_forget`), as they drop a read
//!   ahead that was in flight when they happened.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex};

use super::FtpFs;
use crate::cache::Listing;
use crate::remote::{self, Data, Kind, Remote};

/// Levels of subdirectories listed ahead below a directory the kernel opened.
pub const DEPTH: u32 = 2;
/// The most worker threads, and so speculative commands outstanding at once.
pub const MAX_WORKERS: usize = 8;
/// The most directories listed ahead (or being listed) that the kernel has not opened, per
/// worker: twice the fetches that can run, so the next ones are ready while they run.
pub const AHEAD_PER_WORKER: usize = 2;
/// Files opened in listing order and read to their end before reading ahead starts.
pub const STREAK: u32 = 2;
/// Files read ahead (or being read) at most.
pub const FILES_AHEAD: usize = 8;
/// The largest file read ahead.
pub const FILE_MAX: u64 = 1 << 20;
/// Bytes held in files read ahead, and in flight, at most.
pub const BYTES_MAX: u64 = 8 << 20;
/// How long a job waits to run, and how long an unused result is kept.
pub const KEEP: Duration = Duration::from_secs(5);
/// The longest an `open` waits for a read ahead of its file that is in flight.
pub const READ_WAIT: Duration = Duration::from_secs(2);

/// The prefetch state of one mount; idle until [`FtpFs::start_prefetch`].
#[derive(Default)]
pub struct Prefetch {
    on: AtomicBool,
    state: Mutex<State>,
    /// Jobs were queued, or a job ended (its bounds may let another run).
    work: Condvar,
    /// A read ahead ended (an `open` may be waiting for it).
    read_done: Condvar,
}

#[derive(Default)]
struct State {
    /// Queued jobs in the walk's order (see [`walk_key`]).
    queue: BTreeMap<Vec<String>, Job>,
    /// Paths of jobs running now.
    running: HashSet<String>,
    /// Directories listed ahead (or being listed) and not opened by the kernel yet.
    ahead: HashMap<String, Instant>,
    /// Files read ahead, by path.
    ready: HashMap<String, Ready>,
    /// Bytes in `ready` and in reads ahead in flight.
    bytes: u64,
    /// The most `bytes` has been (for `ftpfs status`: the bound held).
    bytes_most: u64,
    /// Files being read ahead.
    reading_ahead: usize,
    /// Handles served from a file read ahead: its path and bytes.
    served: HashMap<u64, (String, Data)>,
    /// The file most recently opened for reading, for the streak.
    current: Option<Current>,
    streak: u32,
    /// Bumped by each change of ours, so a read ahead in flight across one is not kept.
    changes: u64,
    /// The most directories listed ahead and not opened yet ([`AHEAD_PER_WORKER`] per
    /// worker).
    max_ahead: usize,
}

#[derive(Clone, Debug)]
struct Job {
    path: String,
    what: What,
    queued: Instant,
}

#[derive(Clone, Copy, Debug)]
enum What {
    /// List the directory; `depth` levels below a directory the kernel opened.
    List { depth: u32 },
    /// Read the file whole, as the listing shows it.
    Read { size: u64, mtime: SystemTime },
}

struct Ready {
    size: u64,
    mtime: SystemTime,
    data: Data,
    at: Instant,
}

struct Current {
    fh: u64,
    path: String,
    size: u64,
    ended: bool,
}

/// Where `path` comes in a depth-first walk in name order: its components compared one by
/// one (`a` < `a/z` < `b`).
fn walk_key(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

impl Prefetch {
    fn on(&self) -> bool {
        self.on.load(AtomicOrdering::Relaxed)
    }

    /// What `ftpfs status` shows of the prefetch.
    pub fn figures(&self) -> crate::status::PrefetchStatus {
        let st = self.state.lock();
        crate::status::PrefetchStatus {
            enabled: self.on(),
            held_bytes: st.bytes,
            held_bytes_most: st.bytes_most,
            held_bytes_bound: BYTES_MAX,
            files_ready: st.ready.len(),
            files_reading: st.reading_ahead,
            listings_ahead: st.ahead.len(),
            jobs_queued: st.queue.len(),
        }
    }

    /// Queues `jobs`, unless already queued, running or done.
    fn queue(&self, st: &mut State, jobs: Vec<Job>) {
        let mut added = false;
        for job in jobs {
            if st.running.contains(&job.path) {
                continue;
            }
            let key = walk_key(&job.path);
            match st.queue.get_mut(&key) {
                // Nearer to a directory the kernel opened: it may go deeper.
                Some(Job {
                    what: What::List { depth },
                    queued,
                    ..
                }) => {
                    if let What::List { depth: d } = job.what {
                        *depth = (*depth).min(d);
                    }
                    *queued = (*queued).max(job.queued);
                }
                Some(_) => {}
                None => {
                    st.queue.insert(key, job);
                    added = true;
                }
            }
        }
        if added {
            self.work.notify_all();
        }
    }

    /// The next job allowed to run, taken off the queue and counted as running; expired
    /// jobs and results are dropped on the way.
    fn next(&self, st: &mut State) -> Option<Job> {
        let now = Instant::now();
        st.queue.retain(|_, j| now.duration_since(j.queued) < KEEP);
        st.ahead.retain(|_, at| now.duration_since(*at) < KEEP);
        let expired: Vec<String> = st
            .ready
            .iter()
            .filter(|(_, r)| now.duration_since(r.at) >= KEEP)
            .map(|(p, _)| p.clone())
            .collect();
        for p in expired {
            if let Some(r) = st.ready.remove(&p) {
                st.bytes -= r.size;
                log::debug!("prefetch: {p} read ahead and not used");
            }
        }
        let key = st.queue.iter().find_map(|(k, j)| {
            let allowed = match j.what {
                What::List { .. } => st.ahead.len() < st.max_ahead,
                What::Read { size, .. } => {
                    st.reading_ahead + st.ready.len() < FILES_AHEAD && st.bytes + size <= BYTES_MAX
                }
            };
            allowed.then(|| k.clone())
        })?;
        let job = st.queue.remove(&key)?;
        match job.what {
            What::List { .. } => {
                st.ahead.insert(job.path.clone(), now);
            }
            What::Read { size, .. } => {
                st.reading_ahead += 1;
                st.bytes += size;
                st.bytes_most = st.bytes_most.max(st.bytes);
            }
        }
        st.running.insert(job.path.clone());
        Some(job)
    }
}

/// How a job ended.
enum Outcome {
    /// Done (or not worth doing any more).
    Done,
    /// A file read ahead and kept: its bytes, counted since the job started, stay counted
    /// (in `ready` now).
    Kept,
    /// No connection to spare: back in the queue, to try when one comes free.
    NoConnection,
}

impl<R: Remote> FtpFs<R> {
    /// Starts listing and reading ahead for this mount (`-o prefetch=on`), on a pool of
    /// `connections`: guesses may use all but one of them.
    pub fn start_prefetch(self: &Arc<Self>, connections: usize) {
        if self.prefetch.on.swap(true, AtomicOrdering::Relaxed) {
            return;
        }
        let workers = connections.saturating_sub(1).clamp(1, MAX_WORKERS);
        self.prefetch.state.lock().max_ahead = AHEAD_PER_WORKER * workers;
        let pf = Arc::clone(&self.prefetch);
        crate::status::set_prefetch(move || pf.figures());
        for i in 0..workers {
            let fs = Arc::downgrade(self);
            let pf = Arc::clone(&self.prefetch);
            let spawned = std::thread::Builder::new()
                .name(format!("prefetch-{i}"))
                .spawn(move || worker(fs, pf));
            if let Err(e) = spawned {
                log::warn!("prefetch: cannot start a worker thread: {e}");
            }
        }
    }

    /// The kernel is opening a directory, or looking up a name in a directory not listed
    /// yet: a walk may start, and the pool's connections are logged in now, while this
    /// directory is listed, ready for its subdirectories.
    pub(super) fn prefetch_walk_may_start(&self) {
        if self.prefetch.on() {
            self.remote.warm_spare();
        }
    }

    /// The kernel opened directory `dir` (whose listing is `listing`): list its
    /// subdirectories ahead.
    pub(super) fn prefetch_opened_dir(&self, dir: &str, listing: &Listing) {
        let pf = &self.prefetch;
        if !pf.on() {
            return;
        }
        let now = Instant::now();
        let jobs = self.subdirs_to_list(dir, listing, 1, now);
        let mut st = pf.state.lock();
        if st.ahead.remove(dir).is_some() {
            log::debug!("prefetch: {dir} was listed ahead");
        }
        // The walk is here now: what comes before this directory in its order was passed
        // (or belongs to another walk, which takes its turn when it opens a directory), and
        // must neither run nor hold a place among the directories listed ahead.
        let here = walk_key(dir);
        st.queue.retain(|k, _| *k > here);
        st.ahead.retain(|p, _| walk_key(p) > here);
        pf.queue(&mut st, jobs);
        // Places among the directories listed ahead came free: a job waiting for one runs.
        pf.work.notify_all();
    }

    /// Listing jobs for the subdirectories of `dir` not in the cache already.
    fn subdirs_to_list(&self, dir: &str, listing: &Listing, depth: u32, now: Instant) -> Vec<Job> {
        if depth > DEPTH {
            return Vec::new();
        }
        listing
            .entries
            .iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| remote::join(dir, &e.name))
            .filter(|p| self.cache.get(p).is_none())
            .map(|path| Job {
                path,
                what: What::List { depth },
                queued: now,
            })
            .collect()
    }

    /// A file was opened for reading, handle `fh`: the data read ahead for it, if it is
    /// still what the listing shows, and the next files to read ahead when the kernel reads
    /// a directory's files one after another. `cached`: the kernel keeps the pages of its
    /// previous open, and may read nothing (it counts as read whole).
    pub(super) fn prefetch_opened_file(
        &self,
        fh: u64,
        path: &str,
        entry: &remote::RemoteEntry,
        listing: &Listing,
        cached: bool,
    ) {
        let pf = &self.prefetch;
        if !pf.on() {
            return;
        }
        let dir = remote::parent(path);
        let name = remote::basename(path);
        let mut st = pf.state.lock();
        // A read ahead in flight is waited for, a little: it started before this open.
        let until = Instant::now() + READ_WAIT;
        while st.running.contains(path) && !pf.read_done.wait_until(&mut st, until).timed_out() {}
        // One queued and not started is read by this open: not twice.
        st.queue.remove(&walk_key(path));
        if let Some(r) = st.ready.remove(path) {
            st.bytes -= r.size;
            // A place among the files read ahead came free.
            pf.work.notify_all();
            if Some(r.mtime) == entry.mtime && r.size == entry.size {
                log::debug!("prefetch: {path} was read ahead");
                st.served.insert(fh, (path.to_string(), r.data));
            } else {
                log::debug!("prefetch: {path} changed since it was read ahead; not used");
            }
        }
        let continues = st.current.as_ref().is_some_and(|c| {
            let (cdir, cname) = (remote::parent(&c.path), remote::basename(&c.path));
            c.ended
                && if cdir == dir {
                    name > cname
                } else {
                    // The walk went on into another directory: its first file.
                    listing
                        .entries
                        .iter()
                        .find(|e| e.kind == Kind::File)
                        .is_some_and(|e| e.name == name)
                }
        });
        st.streak = if continues { st.streak + 1 } else { 0 };
        st.current = Some(Current {
            fh,
            path: path.to_string(),
            size: entry.size,
            ended: entry.size == 0 || cached,
        });
        if st.streak < STREAK {
            return;
        }
        let now = Instant::now();
        let mut jobs = files_after(dir, listing, Some(name), &st, now);
        // The walk goes on into the next directory once this one's files are done, when
        // nothing else comes first (no subdirectory after this file): its first files too,
        // if its listing is at hand (listed ahead).
        let subdir_next = listing
            .entries
            .iter()
            .any(|e| e.name.as_str() > name && e.kind == Kind::Dir);
        if jobs.len() < FILES_AHEAD && !dir.is_empty() && !subdir_next {
            let parent = remote::parent(dir);
            let here = remote::basename(dir);
            let next = self.cache.get(parent).and_then(|pl| {
                let next = pl
                    .entries
                    .iter()
                    .find(|e| e.kind == Kind::Dir && e.name.as_str() > here)?;
                let path = remote::join(parent, &next.name);
                Some((self.cache.get(&path)?, path))
            });
            if let Some((next, path)) = next {
                let more = files_after(&path, &next, None, &st, now);
                let room = FILES_AHEAD - jobs.len();
                jobs.extend(more.into_iter().take(room));
            }
        }
        pf.queue(&mut st, jobs);
    }

    /// The bytes of a read of handle `fh` from the file read ahead for it, if it was.
    pub(super) fn prefetch_read(&self, fh: u64, offset: u64, size: u32) -> Option<Data> {
        let pf = &self.prefetch;
        if !pf.on() {
            return None;
        }
        let mut st = pf.state.lock();
        let (_, data) = st.served.get(&fh)?;
        let start = (offset.min(data.len() as u64)) as usize;
        let end = start.saturating_add(size as usize).min(data.len());
        let (out, whole) = (data.sub(start, end), end == data.len());
        if let Some(c) = st.current.as_mut().filter(|c| c.fh == fh) {
            c.ended |= whole;
        }
        Some(out)
    }

    /// A read of `len` bytes at `offset` from handle `fh` ended: notes a file read to its
    /// end, for the streak.
    pub(super) fn prefetch_note_read(&self, fh: u64, offset: u64, len: usize) {
        let pf = &self.prefetch;
        if !pf.on() {
            return;
        }
        let mut st = pf.state.lock();
        if let Some(c) = st.current.as_mut().filter(|c| c.fh == fh) {
            c.ended |= offset + len as u64 >= c.size;
        }
    }

    pub(super) fn prefetch_release(&self, fh: u64) {
        if self.prefetch.on() {
            self.prefetch.state.lock().served.remove(&fh);
        }
    }

    /// `path` (and anything below it) is changed by us: what was read ahead of it is not
    /// used, nor is a read ahead in flight now.
    pub(super) fn prefetch_forget(&self, path: &str) {
        let pf = &self.prefetch;
        if !pf.on() {
            return;
        }
        let mut st = pf.state.lock();
        st.changes += 1;
        let prefix = format!("{path}/");
        let doomed: Vec<String> = st
            .ready
            .keys()
            .filter(|p| *p == path || p.starts_with(&prefix))
            .cloned()
            .collect();
        for p in doomed {
            if let Some(r) = st.ready.remove(&p) {
                st.bytes -= r.size;
            }
        }
        // A handle still reading those bytes reads from the server from now on.
        st.served
            .retain(|_, (p, _)| *p != path && !p.starts_with(&prefix));
    }

    /// Runs one job.
    fn prefetch_run(&self, job: &Job, in_flight: usize) -> Outcome {
        match job.what {
            What::List { depth } => self.list_ahead(&job.path, depth, job.queued, in_flight),
            What::Read { size, mtime } => self.read_ahead(&job.path, size, mtime, in_flight),
        }
    }

    /// Lists `dir` ahead, and queues its subdirectories as if queued with it (`queued`):
    /// a guess made from a guess expires with it, so that nothing listed ahead outlives
    /// the place it holds among the directories listed ahead.
    fn list_ahead(&self, dir: &str, depth: u32, queued: Instant, in_flight: usize) -> Outcome {
        let lock = self.cache.fetch_lock(dir);
        // The directory's fetch lock is taken only once a connection is in hand: a request
        // for this directory must not wait behind a login. Someone listing it now, or a
        // listing in the cache, and there is nothing to do.
        let mut guard = None;
        let mut token = None;
        let mut claim = || {
            guard = lock.try_lock();
            token = Some(self.cache.token());
            guard.is_some() && self.cache.get(dir).is_none()
        };
        let listed = self.remote.list_spare(dir, &mut claim);
        let listing = match (listed, token) {
            (Ok(Some(mut entries)), Some(token)) => {
                entries.retain(|e| remote::valid_name(&e.name));
                self.writes().add_pending(dir, &mut entries);
                log::debug!("prefetch: listed {dir} ahead, depth {depth}, {in_flight} in flight");
                self.cache.insert(dir, Listing::new(entries), token)
            }
            // Claimed, and declined: listed by someone else (or being listed).
            (Ok(_), Some(_)) => match self.cache.get(dir) {
                Some(l) => l,
                None => return Outcome::Done,
            },
            (Ok(_), None) => return Outcome::NoConnection,
            (Err(e), _) => {
                log::debug!("prefetch: listing {dir} failed: {e}");
                return Outcome::Done;
            }
        };
        drop(guard);
        let jobs = self.subdirs_to_list(dir, &listing, depth + 1, queued);
        let pf = &self.prefetch;
        pf.queue(&mut pf.state.lock(), jobs);
        Outcome::Done
    }

    fn read_ahead(&self, path: &str, size: u64, mtime: SystemTime, in_flight: usize) -> Outcome {
        let pf = &self.prefetch;
        let changes = pf.state.lock().changes;
        let read = self.remote.read_spare(path, size);
        let mut st = pf.state.lock();
        let data = match read {
            Ok(Some(data)) if data.len() as u64 == size => data,
            Ok(Some(_)) => {
                log::debug!("prefetch: {path} is not {size} bytes any more");
                return Outcome::Done;
            }
            Ok(None) => return Outcome::NoConnection,
            Err(e) => {
                log::debug!("prefetch: reading {path} ahead failed: {e}");
                return Outcome::Done;
            }
        };
        if st.changes != changes {
            log::debug!("prefetch: {path} read ahead across a change of ours; dropped");
            return Outcome::Done;
        }
        log::debug!("prefetch: read {path} ahead, {size} bytes, {in_flight} in flight");
        let ready = Ready {
            size,
            mtime,
            data: Data::from(data),
            at: Instant::now(),
        };
        if let Some(old) = st.ready.insert(path.to_string(), ready) {
            st.bytes -= old.size;
        }
        Outcome::Kept
    }
}

/// Jobs to read ahead the small files of `dir` (whose listing is `listing`) after `after`
/// (from the first without), in listing order, [`FILES_AHEAD`] at most.
fn files_after(
    dir: &str,
    listing: &Listing,
    after: Option<&str>,
    st: &State,
    now: Instant,
) -> Vec<Job> {
    listing
        .entries
        .iter()
        .filter(|e| after.is_none_or(|a| e.name.as_str() > a))
        .filter(|e| e.kind == Kind::File && e.size <= FILE_MAX)
        .filter_map(|e| {
            let mtime = e.mtime?;
            let path = remote::join(dir, &e.name);
            (!st.ready.contains_key(&path)).then_some(Job {
                path,
                what: What::Read {
                    size: e.size,
                    mtime,
                },
                queued: now,
            })
        })
        .take(FILES_AHEAD)
        .collect()
}

/// One worker: takes the next job, runs it while the filesystem exists.
fn worker<R: Remote>(fs: Weak<FtpFs<R>>, pf: Arc<Prefetch>) {
    crate::signals::block_here();
    loop {
        let (job, in_flight) = {
            let mut st = pf.state.lock();
            loop {
                if fs.strong_count() == 0 {
                    return;
                }
                if let Some(job) = pf.next(&mut st) {
                    break (job, st.running.len());
                }
                // Woken when jobs come or places free up; the period only notices the
                // mount gone, and jobs expiring.
                pf.work.wait_for(&mut st, Duration::from_secs(1));
            }
        };
        let Some(fs) = fs.upgrade() else {
            return;
        };
        let outcome = fs.prefetch_run(&job, in_flight);
        drop(fs);
        let mut st = pf.state.lock();
        st.running.remove(&job.path);
        if let What::Read { size, .. } = job.what {
            st.reading_ahead -= 1;
            if !matches!(outcome, Outcome::Kept) {
                st.bytes -= size;
            }
            pf.read_done.notify_all();
        }
        if let (Outcome::NoConnection, What::List { .. }) = (&outcome, job.what) {
            st.ahead.remove(&job.path);
        }
        if let Outcome::NoConnection = outcome {
            // The pool waited a little for a connection already; the job waits its turn.
            let key = walk_key(&job.path);
            st.queue.entry(key).or_insert(job);
        }
        pf.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(path: &str, depth: u32) -> Job {
        Job {
            path: path.to_string(),
            what: What::List { depth },
            queued: Instant::now(),
        }
    }

    fn read(path: &str, size: u64) -> Job {
        Job {
            path: path.to_string(),
            what: What::Read {
                size,
                mtime: SystemTime::UNIX_EPOCH,
            },
            queued: Instant::now(),
        }
    }

    /// As [`FtpFs::start_prefetch`] sets it up for 5 connections.
    fn prefetch() -> Prefetch {
        let pf = Prefetch::default();
        pf.state.lock().max_ahead = 4 * AHEAD_PER_WORKER;
        pf
    }

    #[test]
    fn jobs_run_in_the_order_of_a_depth_first_walk_by_name() {
        let pf = prefetch();
        let mut st = pf.state.lock();
        let jobs = ["b", "a/z", "a", "a/b/c", "a-b", "a/b"];
        pf.queue(&mut st, jobs.iter().map(|p| list(p, 1)).collect());
        let order: Vec<String> = std::iter::from_fn(|| pf.next(&mut st).map(|j| j.path)).collect();
        // `a-b` sorts before `a/…` by bytes but after the whole of `a` in a walk.
        assert_eq!(order, ["a", "a/b", "a/b/c", "a/z", "a-b", "b"]);
    }

    #[test]
    fn listings_ahead_stop_at_the_bound_until_the_walk_takes_them() {
        let pf = prefetch();
        let mut st = pf.state.lock();
        let jobs = (0..20).map(|i| list(&format!("d{i:02}"), 1)).collect();
        pf.queue(&mut st, jobs);
        let mut ran = Vec::new();
        while let Some(j) = pf.next(&mut st) {
            st.running.remove(&j.path);
            ran.push(j.path);
        }
        assert_eq!(ran.len(), st.max_ahead);
        // The walk opens the first: one more may go.
        st.ahead.remove("d00");
        assert_eq!(pf.next(&mut st).map(|j| j.path), Some("d08".into()));
        assert!(pf.next(&mut st).is_none());
    }

    #[test]
    fn reads_ahead_are_bounded_in_count_and_bytes() {
        let pf = prefetch();
        let mut st = pf.state.lock();
        let jobs = (0..20)
            .map(|i| read(&format!("f{i:02}"), FILE_MAX))
            .collect();
        pf.queue(&mut st, jobs);
        let mut n = 0;
        while pf.next(&mut st).is_some() {
            n += 1;
        }
        assert_eq!(n as u64, (BYTES_MAX / FILE_MAX).min(FILES_AHEAD as u64));
        assert!(st.bytes <= BYTES_MAX);
    }

    #[test]
    fn a_job_is_queued_once_and_keeps_the_smaller_depth() {
        let pf = prefetch();
        let mut st = pf.state.lock();
        pf.queue(&mut st, vec![list("a", 2), list("a", 1), list("a", 2)]);
        assert_eq!(st.queue.len(), 1);
        let job = pf.next(&mut st).unwrap();
        assert!(matches!(job.what, What::List { depth: 1 }));
        // Running: not queued again.
        pf.queue(&mut st, vec![list("a", 1)]);
        assert!(st.queue.is_empty());
    }
}
