//! Segmented reads: one file fetched as several `REST` + `RETR` ranges on parallel
//! connections, when one connection cannot fill the link.
//!
//! Hosting servers limit each session's rate (pure-ftpd `-T`, proftpd `TransferRate`): one
//! stream then crawls however fast the link is (2 MiB/s for a 64 MiB file is 32 s), while
//! the pool has idle connections. So a sequential reader of a big file whose stream is
//! measured to be slow hands its stream over to *segments*:
//!
//! - the file ahead is cut into ranges (the first one ends where the handed-over stream
//!   reaches the next multiple of [`CHUNK`], so no byte is fetched twice) of what one
//!   connection fetches in [`RANGE_TIME`], between [`CHUNK`] and [`MAX_CHUNK`]: at the
//!   single stream's rate, then at each segment's once measured. Each range costs a few
//!   round trips to start (0.1 s of every 4 MiB at 2 MiB/s and 50 ms); near the end of the
//!   file, once the segments are judged useful, ranges are sized so that they end together
//!   (an equal share of what is still to come). Each segment, a thread with its own
//!   connection, takes the next range nobody has, fetches it with `REST` + `RETR`, ends
//!   the transfer by closing the data connection once it has the range (the server
//!   answers `426` or `226`, pure-ftpd a second `150`: all of them leave the control
//!   connection in step, as for [`super::Stream::close`]), and takes the next (or reads
//!   on, when the next range starts where its own ended);
//! - the reader takes the bytes in order, as they arrive, from the ranges ([`serve`]);
//! - the first segment is the reader's own stream and connection; the others run only on
//!   *spare* connections ([`Pool::checkout_spare`]: idle or new, while another stays free),
//!   and any segment gives its connection back at its next socket read when a checkout is
//!   waiting ([`Pool::wanted`]; its range is taken again from the first missing byte), so
//!   a request of the kernel waits at most one read behind them;
//! - how many, from the measured total rate (over [`INTERVAL`] from the newest segment's
//!   first bytes): at first as many as there are idle connections (logged in already,
//!   they cost only a `REST` + `RETR` each; one stays free for listings), at least two,
//!   while the pool logs in ahead ([`Pool::grow_ahead`]) those it has room for; if they
//!   are at least a quarter faster than the single stream was, as many as the pool gives,
//!   and one fewer if those added (or started at once) brought less than half of what
//!   they could. If they are not faster, segments stop for this file: the link, not the
//!   session, is the limit, and the reader goes back to one stream. (Two first and the
//!   rest after the judgement left two idle connections unused for 0.7 s more. Adding one
//!   at a time, a second apart, would spend several seconds at a fraction of the rate;
//!   per-session limits are the common case.)
//! - memory: at most `segments + 1` ranges are held at once, i.e. at most
//!   `(pool size) × MAX_CHUNK` bytes per file (40 MiB with the default pool of 5), besides
//!   the reader's window. A range is freed once the reader has read past it by a request
//!   of the kernel (requests may overtake each other: [`plan::LATE`]);
//! - a range cut midway (connection reset, `426`, server restart) is taken again, by the
//!   same segment on a new connection or by another, with `REST` at its first missing
//!   byte, with the retry policy's backoff and at most its number of retries per range;
//!   every socket read has the policy's deadline (the watchdog ends a stalled one). A range
//!   that fails for good, or that the server ends early (the file shrank), is not served
//!   from here: the reader reads it with its own stream, whose retries and errors are the
//!   usual ones. So the caller sees the server's bytes or an honest error, never a short
//!   or wrong file; the file's end counts only from the last range's `226`;
//! - everything stops when the file is closed or the reader reads far from the ranges
//!   (a seek): the segments end their transfers on their own threads and give their
//!   connections back.
//!
//! Only plain (`MODE S`) streams of a server that takes `REST`, of a file whose size is
//! known, with at least [`MIN_LEFT`] bytes left, that ran at less than [`FAST`] for a
//! while ([`MEASURE_BUSY`] spent waiting for the socket), and whose rest would take at
//! least [`MIN_REMAINING`] at that rate: on loopback or a fast link one connection fills
//! the machine and segments never start, and a transfer about to end is left alone. FTPS and active mode work as
//! for any transfer (each data connection resumes the control connection's TLS session,
//! or is accepted by the connection's own listener).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{Inner, State, Transfer};
use crate::error::{Error, Op, Result};
use crate::ftp::pool::{Lease, Pool};
#[cfg(doc)]
use crate::ftp::spare::SPARE_WAIT;

mod plan;
use plan::*;

/// The least length of a range (but near the end of the file), and where the first one
/// ends: the reader's stream fetches up to the first multiple of it. At 2 MiB/s a range of
/// 4 MiB takes 2 s, and starting the next one (closing the data connection, `EPSV`,
/// `REST` + `RETR`) about 3 round trips: 7 % at 50 ms (measured: 0.1 to 0.15 s of each
/// 2.2 s on pure-ftpd `-T 2048`).
pub const CHUNK: u64 = 4 << 20;
/// A range is what one connection fetches in this long, at the single stream's rate, then
/// at each segment's once measured...
pub const RANGE_TIME: Duration = Duration::from_secs(4);
/// ... but at most this long: the memory held per file is `segments + 1` ranges.
pub const MAX_CHUNK: u64 = 2 * CHUNK;
/// Segments start only with at least this much of the file left.
pub const MIN_LEFT: u64 = 2 * CHUNK;
/// The stream is measured over at least this much time spent waiting for its socket (and
/// [`MEASURE_BYTES`]) before segments are considered.
pub const MEASURE_BUSY: Duration = Duration::from_millis(300);
const MEASURE_BYTES: u64 = 256 << 10;
/// A stream faster than this (bytes per second) is not limited per connection, or not
/// enough to matter: segments are not tried.
pub const FAST: f64 = 64.0 * 1024.0 * 1024.0;
/// Segments start only when the rest of the file would take at least this long at the
/// stream's rate: starting them costs logins (about 6 round trips each) and a few round
/// trips per range, which a transfer about to end anyway would not win back (a 32 MiB file
/// over a 50 ms link, still in TCP's slow start when it is measured, is done in 0.3 s).
pub const MIN_REMAINING: Duration = Duration::from_secs(2);
/// How long the total rate is measured before a segment is added (or the last one found
/// useless).
pub const INTERVAL: Duration = Duration::from_millis(600);
/// How long a segment waits for a spare connection: longer than a guess's [`SPARE_WAIT`],
/// since segments start as soon as the stream is judged slow, perhaps while the
/// connections they are counted on are still being logged in (about 6 round trips).
const CONNECTION_WAIT: Duration = Duration::from_secs(2);
/// A segment with nothing to fetch for this long gives its connection back.
const IDLE: Duration = Duration::from_secs(5);
/// One socket read of a segment.
const READ: usize = 256 * 1024;

/// What a reader knows about segmenting its file.
#[derive(Default)]
pub(super) enum Slot {
    /// Not (yet) measured slow enough.
    #[default]
    Untried,
    Active(Segments),
    /// Tried and found useless, or the stream is fast: one stream until the file is closed.
    Useless,
}

/// The segments of one open file; dropping it stops them.
pub(super) struct Segments {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Arc<Pool>,
    path: String,
    plan: Mutex<Plan>,
    /// Bytes arrived, a range ended, the reader moved on, or a segment came or went.
    changed: Condvar,
}

/// Considers handing the reader's stream over to segments, after bytes came from it; whether
/// it was handed over now. Cheap when nothing is to be done: a few comparisons. Called
/// between two socket reads, not only between two reads of the kernel: at 2 MiB/s one
/// 1 MiB read of the kernel takes half a second.
pub(super) fn consider(inner: &Arc<Inner>, st: &mut State) -> bool {
    if !matches!(st.segments, Slot::Untried) {
        return false;
    }
    let (Some(size), Some(s)) = (inner.size, st.stream.as_ref()) else {
        return false;
    };
    let bytes = s.pos - s.start;
    if s.z || !s.rest || s.transfer.is_none() || bytes < MEASURE_BYTES || s.busy < MEASURE_BUSY {
        return false;
    }
    if size < s.pos + MIN_LEFT {
        return false;
    }
    let rate = bytes as f64 / s.busy.as_secs_f64();
    let figures = inner.pool.figures();
    // One connection stays free for listings.
    let cap = figures.limit.unwrap_or(figures.max).min(figures.max) - 1;
    if rate >= FAST || cap < 2 {
        st.segments = Slot::Useless;
        return false;
    }
    // Considered again at the next read: the rate may fall.
    if ((size - s.pos) as f64) < rate * MIN_REMAINING.as_secs_f64() {
        return false;
    }
    let s = st.stream.take().expect("checked above");
    // Connections logged in and idle (or about to be) cost a segment only its `REST` +
    // `RETR`: as many segments start at once as they allow (one stays free), at least
    // two, and the rate of all of them is judged against the single stream's. The pool
    // logs in ahead the connections it has room for, so that those the judgement adds are
    // ready by then.
    let first = figures.idle.clamp(2, cap);
    if first < cap {
        inner.pool.grow_ahead();
    }
    log::debug!(
        "{}: one stream reads at {:.0} KiB/s; fetching ranges on {first} connections, up to {cap}",
        inner.path,
        rate / 1024.0
    );
    // The reader's stream fetches up to the next multiple of CHUNK.
    let first_end = (s.pos / CHUNK + 1) * CHUNK;
    let mut plan = Plan::new(size, s.pos, cap, first, rate);
    plan.chunks
        .push_back(Chunk::new(s.pos, first_end.min(size), Taken));
    plan.next = first_end.min(size);
    plan.workers = 1;
    plan.spawning = first - 1;
    plan.tally.most_workers = 1;
    let shared = Arc::new(Shared {
        pool: Arc::clone(&inner.pool),
        path: inner.path.clone(),
        plan: Mutex::new(plan),
        changed: Condvar::new(),
    });
    let super::Stream {
        lease,
        transfer,
        pos,
        ..
    } = s;
    let job = Job {
        start: pos,
        from: pos,
        end: first_end.min(size),
        last: first_end >= size,
    };
    spawn(&shared, Some((lease, transfer.map(|t| (t, pos)), job)));
    for _ in 1..first {
        spawn(&shared, None);
    }
    st.segments = Slot::Active(Segments { shared });
    true
}

/// Fills `out` with the file's bytes from `at` on, from the segments' ranges, waiting
/// (until `deadline`) for those being fetched. Returns how many bytes, and whether the
/// file ends there (proved by the last range's `226`). Fewer bytes than asked for, and no
/// end: the rest is not here (not fetched, failed, or far away); the reader reads it with
/// its own stream. A read far from the ranges (a seek) stops the segments.
pub(super) fn serve(
    st: &mut State,
    at: u64,
    out: &mut [u8],
    deadline: Instant,
) -> Result<(usize, bool)> {
    let Slot::Active(seg) = &st.segments else {
        return Ok((0, false));
    };
    let shared = Arc::clone(&seg.shared);
    let mut plan = shared.plan.lock();
    let mut filled = 0;
    let mut eof = false;
    while filled < out.len() {
        match plan.copy(at + filled as u64, &mut out[filled..]) {
            Served::Bytes(n) => filled += n,
            Served::Eof => {
                eof = true;
                break;
            }
            Served::NotHere => break,
            Served::Wait => {
                if shared.changed.wait_until(&mut plan, deadline).timed_out() {
                    log::warn!("{}: no segment delivered byte {at} in time", shared.path);
                    return Err(Error::Timeout { op: Op::Retr });
                }
            }
        }
    }
    if plan.release(at, at + filled as u64) {
        shared.changed.notify_all();
    }
    let workers = plan.workers;
    let far = filled == 0 && !eof && plan.far(at);
    let over = filled == 0 && !eof && plan.over();
    drop(plan);
    if let Some(t) = &st.transfer {
        if filled > 0 {
            t.moved(filled as u64, at + filled as u64);
        }
        t.segments(workers);
    }
    if far {
        log::debug!(
            "{}: read at {at}, far from the segments: stopped",
            shared.path
        );
        // Measured again from the next stream: another part of the file may be worth it.
        st.segments = Slot::Untried;
    } else if over {
        st.segments = Slot::Useless;
    }
    if !matches!(st.segments, Slot::Active(_)) {
        if let Some(t) = &st.transfer {
            t.segments(0);
        }
    }
    Ok((filled, eof))
}

impl Drop for Segments {
    fn drop(&mut self) {
        let mut plan = self.shared.plan.lock();
        plan.cancelled = true;
        log::info!(
            "read of {} in segments: {} ranges fetched, {} resumed, {} split, up to {} connections, at most {} bytes held, ranges of up to {} bytes",
            self.shared.path,
            plan.tally.ranges,
            plan.tally.resumes,
            plan.tally.splits,
            plan.tally.most_workers,
            plan.peak,
            plan.tally.longest
        );
        drop(plan);
        self.shared.changed.notify_all();
    }
}

/// A transfer running on a segment's connection, and the byte of the file it has reached.
type Open = (Box<dyn Transfer>, u64);

/// Starts a segment on its own thread: with the reader's stream (`first`), or on a spare
/// connection (given up at once when there is none).
fn spawn(shared: &Arc<Shared>, first: Option<(Lease, Option<Open>, Job)>) {
    let sh = Arc::clone(shared);
    let spare = first.is_none();
    let spawned = crate::signals::spawn_blocked(
        std::thread::Builder::new().name("ftpfs-segment".into()),
        move || match first {
            Some((lease, open, job)) => run(&sh, lease, open, Some(job)),
            None => {
                let deadline = sh.pool.policy().deadline_from_now();
                let lease =
                    Pool::checkout_spare(&sh.pool, deadline, Instant::now() + CONNECTION_WAIT);
                let mut plan = sh.plan.lock();
                plan.spawning -= 1;
                match lease {
                    Ok(Some(lease)) if !plan.cancelled => {
                        plan.workers += 1;
                        plan.ramp.settling = true;
                        plan.tally.most_workers = plan.tally.most_workers.max(plan.workers);
                        drop(plan);
                        run(&sh, lease, None, None);
                    }
                    other => {
                        if let Err(e) = other {
                            log::debug!("no connection for a segment: {e}");
                        }
                        // As many as the pool gives: no more.
                        plan.target = plan.target.min(plan.workers + plan.spawning);
                        plan.ramp.growing = false;
                        drop(plan);
                        sh.changed.notify_all();
                    }
                }
            }
        },
    );
    if let Err(e) = spawned {
        log::debug!("no thread for a segment ({e})");
        let mut plan = shared.plan.lock();
        if spare {
            plan.spawning -= 1;
        } else {
            // The reader's stream went with the closure; its range is fetched again.
            plan.workers -= 1;
            plan.disbanded = true;
            for c in plan.chunks.iter_mut().filter(|c| c.state == Taken) {
                c.state = Waiting;
            }
        }
        drop(plan);
        shared.changed.notify_all();
    }
}

/// A segment: takes ranges and fetches them until there is nothing left for it, the reader
/// is gone, there are more segments than wanted, or a checkout waits for a connection.
/// `open` is a transfer already running on `lease` and the position it has reached.
fn run(sh: &Arc<Shared>, mut lease: Lease, mut open: Option<Open>, mut job: Option<Job>) {
    let policy = *sh.pool.policy();
    loop {
        let next = match job.take() {
            Some(j) => Some(j),
            None => next_job(sh),
        };
        let Some(j) = next else { break };
        let fetched = fetch(sh, &mut lease, &mut open, j);
        let Err(e) = fetched else { continue };
        // Cut midway: the range waits for another attempt from its first missing byte.
        let failures = sh
            .plan
            .lock()
            .fail(j.start, e.is_retryable(true), policy.retries);
        sh.changed.notify_all();
        log::warn!(
            "{}: segment at byte {} broke ({e}); {}",
            sh.path,
            j.start,
            if failures <= policy.retries && e.is_retryable(true) {
                "resuming"
            } else {
                "left to the reader"
            }
        );
        std::thread::sleep(policy.delay(failures.max(1), &e));
        if lease.is_broken() {
            drop(lease);
            let deadline = policy.deadline_from_now();
            match Pool::checkout_spare(&sh.pool, deadline, Instant::now() + CONNECTION_WAIT) {
                Ok(Some(l)) => lease = l,
                _ => {
                    leave(sh, true);
                    return;
                }
            }
        }
    }
    if let Some((t, _)) = open.take() {
        end_early(&mut lease, t);
    }
    leave(sh, false);
}

/// The segment ends; the plan learns it (with `counted`, it already has).
fn leave(sh: &Shared, lost: bool) {
    let mut plan = sh.plan.lock();
    plan.workers -= 1;
    if lost {
        plan.target = plan.target.min(plan.workers.max(1));
    }
    drop(plan);
    sh.changed.notify_all();
}

/// Waits for a range to fetch; `None` when this segment should end.
fn next_job(sh: &Shared) -> Option<Job> {
    let give_up = Instant::now() + IDLE;
    let mut plan = sh.plan.lock();
    loop {
        if plan.cancelled {
            return None;
        }
        if plan.workers > plan.target {
            return None;
        }
        if sh.pool.wanted() {
            // A request of the kernel waits for a connection: this one goes back.
            plan.target = plan.target.min(plan.workers - 1);
            plan.ramp.growing = false;
            return None;
        }
        if let Some(j) = plan.take() {
            return Some(j);
        }
        if plan.disbanded
            || plan.next >= plan.size && !plan.chunks.iter().any(|c| c.state == Waiting)
        {
            return None;
        }
        if sh.changed.wait_until(&mut plan, give_up).timed_out() {
            return None;
        }
    }
}

/// Fetches range `j` on `lease`, reusing the transfer in `open` if it is at `j.from`;
/// leaves the transfer in `open` when the range ends before the file does (the next range
/// may follow on). The bytes go to the plan as they arrive.
fn fetch(sh: &Arc<Shared>, lease: &mut Lease, open: &mut Option<Open>, mut j: Job) -> Result<()> {
    let policy = *sh.pool.policy();
    let mut t = match open.take() {
        Some((t, at)) if at == j.from => t,
        other => {
            if let Some((t, _)) = other {
                end_early(lease, t);
            }
            let t = open_at(lease, &sh.path, j.from, policy.deadline_from_now())?;
            sh.plan.lock().tally.ranges += 1;
            t
        }
    };
    let mut pos = j.from;
    let mut buf = vec![0u8; READ];
    let mut first = true;
    loop {
        let room = if j.last {
            READ
        } else {
            (j.end - pos).min(READ as u64) as usize
        };
        if room == 0 {
            sh.plan.lock().finish(j.start, Done { eof: false });
            sh.changed.notify_all();
            *open = Some((t, pos));
            return Ok(());
        }
        let guard = lease.conn().guard(policy.deadline_from_now());
        let r = t.read(&mut buf[..room]);
        drop(guard);
        let n = match r {
            Ok(0) => {
                lease.conn().sockets.end_data();
                if let Err(e) = t.finish() {
                    if let Some(sessions) = &lease.conn().sessions {
                        // See `tls`: an early goodbye is not trusted again after a failure.
                        sessions.transfer_failed(&e);
                    }
                    let e = Error::from_ftp(Op::Retr, e);
                    if e.breaks_connection() {
                        lease.mark_broken();
                    }
                    return Err(e);
                }
                let mut plan = sh.plan.lock();
                if let Some((end, last)) = plan.bounds(j.start) {
                    (j.end, j.last) = (end, last);
                }
                if pos < j.end {
                    if let Some(sessions) = lease.conn().sessions.as_ref() {
                        if sessions.closed_early() {
                            // The server may have taken our early goodbye for the end; the
                            // reader's own stream, which waits for the server's, reads on.
                            sessions.transfer_failed(&format_args!(
                                "a range of {} ended at byte {pos} of {}",
                                sh.path, j.end
                            ));
                        }
                    }
                }
                // Only the last range may end here; another ending early means the file
                // shrank, and the reader finds out with its own stream.
                let eof = j.last && pos == j.end;
                plan.finish(j.start, Done { eof });
                drop(plan);
                sh.changed.notify_all();
                return Ok(());
            }
            Ok(n) => n,
            Err(e) => {
                lease.mark_broken();
                let fired = lease.conn().sockets.fired();
                lease.conn().sockets.kill();
                return Err(if fired {
                    Error::Timeout { op: Op::Retr }
                } else {
                    Error::from_io(Op::Retr, e)
                });
            }
        };
        let now = Instant::now();
        let mut plan = sh.plan.lock();
        // Another segment may have taken this range's second half.
        if let Some((end, last)) = plan.bounds(j.start) {
            (j.end, j.last) = (end, last);
        }
        // Past the range's end: its second half was taken, or the file grew past its
        // listed size (what is beyond is the reader's to read).
        let beyond = pos + n as u64 > j.end;
        let keep = if beyond { (j.end - pos) as usize } else { n };
        if !plan.append(j.start, &buf[..keep]) {
            drop(plan);
            end_early(lease, t);
            return Ok(());
        }
        pos += keep as u64;
        if first {
            first = false;
            plan.settled(now);
        }
        let step = plan.step(now);
        match step {
            Step::Add(more) => {
                plan.target += more;
                plan.spawning += more;
            }
            Step::Fewer => plan.target = plan.workers - 1,
            Step::Stop => {
                log::info!(
                    "{}: more connections do not read faster; one stream again",
                    sh.path
                );
                plan.disbanded = true;
            }
            Step::Nothing => {}
        }
        if beyond {
            plan.finish(j.start, Done { eof: false });
        }
        drop(plan);
        sh.changed.notify_all();
        if let Step::Add(more) = step {
            for _ in 0..more {
                spawn(sh, None);
            }
        }
        if beyond {
            end_early(lease, t);
            return Ok(());
        }
        if sh.pool.wanted() {
            // A request of the kernel waits for a connection: this one goes back now, and
            // the range is taken again from its first missing byte.
            let mut plan = sh.plan.lock();
            plan.finish(j.start, Waiting);
            plan.target = plan.target.min(plan.workers - 1);
            plan.ramp.growing = false;
            drop(plan);
            sh.changed.notify_all();
            end_early(lease, t);
            return Ok(());
        }
    }
}

/// `REST from` (or none at 0) and `RETR` on `lease`.
fn open_at(
    lease: &mut Lease,
    path: &str,
    from: u64,
    deadline: Instant,
) -> Result<Box<dyn Transfer>> {
    let stream = lease.run_until(Some(deadline), |c| super::retr_from(c, path, from))?;
    log::debug!("RETR {path} from {from} (segment)");
    Ok(Box::new(stream))
}

/// Ends a transfer that has what it was for, as [`super::Stream::close`] does: close the
/// data connection, read the server's reply. A connection left in doubt is not reused.
fn end_early(lease: &mut Lease, t: Box<dyn Transfer>) {
    lease.conn().sockets.end_data();
    if let Err(e) = super::ended_in_step(t.finish()) {
        log::debug!("ending a segment's transfer broke its connection: {e}");
        lease.mark_broken();
    }
}
