//! A bounded pool of logged-in control connections.
//!
//! FTP runs one transfer per control connection, so parallel work needs parallel
//! connections, and servers cap how many one user may open. Two failure modes of other FTP
//! mounts shape this pool:
//!
//! - *A listing waiting behind a download.* Transfers may take at most `size - 1`
//!   connections; the last one is kept for metadata (listings), so `ls` answers while `cat`
//!   streams. With a pool of one, metadata reclaims the connection between two reads.
//! - *Deadlock between readers.* A streaming reader keeps its connection (and open data
//!   connection) between `read` calls, so the next sequential read costs no round trip. A
//!   program reading two files alternately (`diff a b`) with a single transfer slot would wait
//!   forever for a connection the other file holds. So streams register here, and a checkout
//!   that finds no free connection *reclaims* the stream of a reader that is not inside a
//!   read call at that moment (its lock is free): the stream is closed, the connection reused,
//!   and that reader reopens at its offset with `REST` next time.
//!
//! - *A server that allows fewer connections than configured.* A login refused with `421
//!   Too many connections` (or proftpd's `530 ... maximum number of connections`) while other
//!   connections of ours are open teaches the pool the server's limit: it shrinks to what it
//!   has and waits for one of those instead of failing. After
//!   [`Endpoint::limit_recheck`] (60 s by default) it tries one more again, since the limit
//!   may have been shared with another client that has left.
//! - *Background work in the way of requests.* The write-back queue's uploads
//!   ([`crate::remote::in_background`]) hold connections while `cp` waits for its `mkdir`
//!   and lookups. A process's request comes first: a background checkout takes nothing
//!   while a foreground checkout waits, and leaves one connection idle (or room to make
//!   one) for the next request, so a request finds one without waiting for an upload to
//!   end or a connection to be prepared. With a pool of one there is nothing to keep: the
//!   queue takes it when no request waits.
//! - *Guesses in the way of requests.* Listing and reading ahead of a walk
//!   ([`Pool::checkout_spare`]) take only a connection that is idle or can be made while
//!   another stays free, never one a checkout waits for, and never reclaim a stream.
//!   Their connections come back idle unprepared, for the walk's next guess at once; a
//!   request takes a prepared idle connection before an unprepared one.
//! - *Idle connections the server closed* (idle timeouts, restarts) are noticed without a
//!   round trip when checked out ([`Sockets::is_stale`]) and replaced.
//!
//! - *A round trip per transfer for its data connection.* Connections coming back are
//!   prepared for their next transfer before they go idle ([`super::prepare`]).
//!
//! Locks: the pool's mutex is never held across network I/O. Connecting, and closing a
//! reclaimed stream, happen after it is released.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::caps::ServerInfo;
use super::conn::{Conn, Endpoint};
use super::prepare::{self, Job};
#[cfg(doc)]
use super::watchdog::Sockets;
use crate::error::{Error, Op, Result};

/// Why a connection is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Short commands and listings.
    Meta,
    /// A file transfer that may keep the connection for a long time.
    Transfer,
}

/// Something holding a pooled connection that it can give back when asked, without waiting.
pub trait Reclaim: Send + Sync {
    /// Takes the held lease if the holder is idle right now; `None` if it is busy or holds none.
    /// Must not block and must not do network I/O: the pool's lock is held.
    fn try_take(&self) -> Option<Box<dyn Reclaimed>>;
}

/// A taken-over holding, to be turned back into a usable lease outside the pool's lock.
pub trait Reclaimed: Send {
    /// Ends whatever was in progress on the connection; `None` if it broke doing so.
    fn into_lease(self: Box<Self>) -> Option<Lease>;
}

/// How long after a failed login ahead [`Pool::grow_ahead`] tries again: every lookup in a
/// directory not listed yet asks for it, and a server that is down must not see a burst of
/// logins for each.
pub const GROW_RETRY: Duration = Duration::from_secs(10);

/// How long a learned connection limit holds before the pool tries one more connection.
pub const DEFAULT_LIMIT_RECHECK: Duration = Duration::from_secs(60);

pub struct Pool {
    endpoint: Endpoint,
    info: Arc<ServerInfo>,
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
    /// Checkouts waiting for a connection; readers wake them when they go idle.
    waiting: AtomicUsize,
    /// Of those, the foreground ones (not [`crate::remote::is_background`]): while there
    /// is one, background checkouts take nothing.
    foreground_waiting: AtomicUsize,
    /// The thread that prepares data connections ([`super::prepare`]); `None` once the
    /// pool is shut down.
    closing: std::sync::atomic::AtomicBool,
}

struct State {
    /// The server's connection limit as learned, and when.
    limit: Option<(usize, Instant)>,
    idle: Vec<Conn>,
    /// Connections that exist or are being made (idle + leased + connecting).
    total: usize,
    /// Leases held for transfers.
    transfers: usize,
    /// Connections with the preparer, or being ended in the background (counted in
    /// `total`, not idle yet, back within a round trip or two).
    preparing: usize,
    /// Of those, connections the preparer is logging in ahead (one at a time, or all the
    /// pool has room for at the start of a walk: [`Pool::grow_ahead`]).
    growing: usize,
    /// When a login ahead last failed: [`Pool::grow_ahead`] waits [`GROW_RETRY`] after.
    grow_failed: Option<Instant>,
    holders: Vec<Weak<dyn Reclaim>>,
}

/// Where a background checkout's connection comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Take {
    Idle,
    New,
}

/// A foreground checkout that had to wait: counted in `foreground_waiting` from its first
/// wait until it ends (with a connection, or not), so background checkouts stand back
/// meanwhile, and woken when the last such checkout ends.
struct InLine<'a> {
    pool: &'a Pool,
    counted: bool,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if self.counted && self.pool.foreground_waiting.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.pool.freed.notify_all();
        }
    }
}

/// A connection checked out of the pool. Returned on drop, unless marked broken.
pub struct Lease {
    pool: Arc<Pool>,
    conn: Option<Conn>,
    purpose: Purpose,
    broken: bool,
    /// When the operation it was checked out for must end.
    deadline: Instant,
    /// Counted as coming back soon ([`Lease::coming_back`]).
    returning: bool,
    /// Checked out for a guess ([`Pool::checkout_spare`]): back idle without preparing.
    spare: bool,
}

impl Pool {
    pub fn new(endpoint: Endpoint, info: Arc<ServerInfo>, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            endpoint,
            info,
            size: size.max(1),
            state: Mutex::new(State {
                limit: None,
                idle: Vec::new(),
                total: 0,
                transfers: 0,
                preparing: 0,
                growing: 0,
                grow_failed: None,
                holders: Vec::new(),
            }),
            freed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            foreground_waiting: AtomicUsize::new(0),
            closing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Hands `job` to a preparing thread; gives it back once the pool is shut down, or if
    /// no thread can be made.
    fn to_preparer(self: &Arc<Self>, job: Job) -> std::result::Result<(), Job> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(job);
        }
        prepare::start(Arc::clone(self), job)
    }

    /// A connection comes back from the preparer (`None`: it broke there); `grown`: it is
    /// the one logged in ahead.
    pub(super) fn prepared(&self, conn: Option<Conn>, grown: bool) {
        let mut st = self.state.lock();
        st.preparing -= 1;
        if grown {
            st.growing -= 1;
        }
        let closing = self.closing.load(Ordering::Relaxed);
        match conn {
            Some(conn) if !closing => st.idle.push(conn),
            Some(conn) => {
                st.total -= 1;
                drop(st);
                conn.quit();
                self.freed.notify_all();
                return;
            }
            None => st.total -= 1,
        }
        drop(st);
        self.freed.notify_all();
    }

    /// Whether `e`, a refused login while others of ours are open, is the server's limit
    /// on connections: then learned (and said once per learning), so that checkouts wait
    /// for one of those instead of failing.
    fn limit_reached(&self, st: &mut State, e: &Error) -> bool {
        if !(e.is_connection_limit() && st.total > 0) {
            return false;
        }
        log::warn!(
            "server {} allows only {} connections ({e}); using that many",
            self.endpoint.display(),
            st.total
        );
        st.limit = Some((st.total, Instant::now()));
        true
    }

    /// A connection the preparer was to add could not be made: `e`.
    pub(super) fn not_grown(&self, e: &Error) {
        let mut st = self.state.lock();
        st.preparing -= 1;
        st.growing -= 1;
        st.total -= 1;
        st.grow_failed = Some(Instant::now());
        if !self.limit_reached(&mut st, e) {
            log::debug!("one more connection, opened ahead, failed: {e}");
        }
        drop(st);
        self.freed.notify_all();
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What is known about the server, shared by all its connections.
    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    pub fn policy(&self) -> &super::retry::Policy {
        &self.endpoint.policy
    }

    /// How many connections may exist now: the configured size, or the server's limit.
    fn size_now(&self, st: &mut State) -> usize {
        match st.limit {
            Some((_, since)) if since.elapsed() >= self.endpoint.limit_recheck => {
                log::info!("trying more FTP connections again");
                st.limit = None;
                self.size
            }
            Some((n, _)) => n.min(self.size),
            None => self.size,
        }
    }

    fn max_transfers(&self, st: &mut State) -> usize {
        (self.size_now(st) - 1).max(1)
    }

    /// What a background checkout may take now (see the module's doc): nothing while a
    /// request waits; else an idle connection if another stays idle, or a new one if room
    /// for one more (or an idle one) stays. `None`: nothing.
    fn background_take(&self, st: &mut State) -> Option<Take> {
        if self.foreground_waiting.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let size = self.size_now(st);
        let room = size.saturating_sub(st.total);
        let idle = st.idle.len();
        if size < 2 {
            // Nothing to keep with a pool of one.
            return if idle > 0 {
                Some(Take::Idle)
            } else {
                (room > 0).then_some(Take::New)
            };
        }
        if idle >= 2 {
            Some(Take::Idle)
        } else if room >= 2 || (room >= 1 && idle == 1) {
            Some(Take::New)
        } else {
            None
        }
    }

    /// A reader let go of its stream between two reads: a waiting checkout may reclaim it.
    pub fn holder_idle(&self) {
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.freed.notify_all();
        }
    }

    /// Whether a checkout is waiting for a connection: long speculative work (segments of a
    /// download) gives its connection back at the next pause.
    pub fn wanted(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Registers a holder whose connection may be reclaimed when the pool runs dry.
    pub fn register(&self, holder: Weak<dyn Reclaim>) {
        let mut st = self.state.lock();
        st.holders.retain(|h| h.strong_count() > 0);
        st.holders.push(holder);
    }

    /// Checks out a connection, connecting a new one if the pool has room. Waits until
    /// `deadline` at most for one to come free.
    pub fn checkout(self: &Arc<Self>, purpose: Purpose, deadline: Instant) -> Result<Lease> {
        self.checkout_or_not(purpose, deadline, true)?
            .ok_or(Error::Timeout { op: Op::Connect })
    }

    /// A connection if one is free or can be made now; `None` instead of waiting.
    pub fn checkout_nowait(
        self: &Arc<Self>,
        purpose: Purpose,
        deadline: Instant,
    ) -> Result<Option<Lease>> {
        self.checkout_or_not(purpose, deadline, false)
    }

    fn checkout_or_not(
        self: &Arc<Self>,
        purpose: Purpose,
        deadline: Instant,
        wait: bool,
    ) -> Result<Option<Lease>> {
        let background = crate::remote::is_background();
        // Declared before the lock's guard, so dropped after it.
        let mut in_line = InLine {
            pool: self,
            counted: false,
        };
        let mut st = self.state.lock();
        loop {
            let slot_ok = purpose == Purpose::Meta || st.transfers < self.max_transfers(&mut st);
            let take = match background {
                false => None,
                true => self.background_take(&mut st),
            };
            if slot_ok && (!background || take.is_some()) {
                let from_idle = take.is_none_or(|t| t == Take::Idle);
                if let Some(conn) = from_idle.then(|| Self::take_idle(&mut st)).flatten() {
                    if conn.sockets.is_stale() {
                        log::debug!("an idle FTP connection was closed by the server");
                        crate::status::stats().lost();
                        st.total -= 1;
                        drop(st);
                        drop(conn);
                        st = self.state.lock();
                        continue;
                    }
                    if purpose == Purpose::Transfer {
                        st.transfers += 1;
                    }
                    return Ok(Some(self.lease(conn, purpose, deadline)));
                }
                // One being prepared comes back within a round trip; a new login costs
                // three or more. Only a checkout that may wait waits for it.
                let new_ok = take == Some(Take::New) || !(wait && st.preparing > 0);
                if st.total < self.size_now(&mut st) && new_ok {
                    st.total += 1;
                    if purpose == Purpose::Transfer {
                        st.transfers += 1;
                    }
                    drop(st);
                    match Conn::connect(&self.endpoint, &self.info, deadline) {
                        Ok(conn) => return Ok(Some(self.lease(conn, purpose, deadline))),
                        Err(e) => {
                            self.forget_one(purpose);
                            st = self.state.lock();
                            // Refused for too many connections while others of ours are
                            // open: that is the server's limit; wait for one of them.
                            if self.limit_reached(&mut st, &e) {
                                continue;
                            }
                            return Err(e);
                        }
                    }
                }
            }
            // Nothing free: take the connection of an idle streaming reader, if any (for
            // background work only when nothing else is left: the reader would reopen
            // its stream for an upload nobody waits for).
            let reclaim = !background
                || (st.idle.is_empty()
                    && st.preparing == 0
                    && st.total >= self.size_now(&mut st)
                    && self.foreground_waiting.load(Ordering::Relaxed) == 0);
            if let Some(taken) = reclaim.then(|| Self::take_idle_holder(&mut st)).flatten() {
                drop(st);
                let lease = taken.into_lease();
                match lease {
                    Some(mut lease) => {
                        self.repurpose(&mut lease, purpose, deadline);
                        return Ok(Some(lease));
                    }
                    None => {
                        // It broke while closing; its slot is free now, so try again.
                        st = self.state.lock();
                        continue;
                    }
                }
            }
            if !wait {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                log::warn!(
                    "no FTP connection came free before the deadline ({} in use)",
                    st.total
                );
                return Err(Error::Timeout { op: Op::Connect });
            }
            // Readers wake us when they go idle; the short period is a safety net for a
            // holder that went idle just before we started waiting.
            self.waiting.fetch_add(1, Ordering::Relaxed);
            if !background && !in_line.counted {
                // Counted until this checkout ends (see `InLine`).
                self.foreground_waiting.fetch_add(1, Ordering::Relaxed);
                in_line.counted = true;
            }
            let until = deadline.min(Instant::now() + Duration::from_millis(200));
            self.freed.wait_until(&mut st, until);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A connection for speculative work (listing or reading ahead), or `None`: only a
    /// connection that is idle or can be made now, and only while another stays free for
    /// the next request of the kernel, so that request never waits behind speculation.
    /// Never reclaims a reader's stream and never takes a connection a checkout is waiting
    /// for; waits until `until` at most for one to come free.
    pub fn checkout_spare(
        self: &Arc<Self>,
        deadline: Instant,
        until: Instant,
    ) -> Result<Option<Lease>> {
        let mut st = self.state.lock();
        loop {
            let room = self.size_now(&mut st).saturating_sub(st.total);
            let idle = st.idle.len();
            // One being prepared (or ended in the background) is back within a round
            // trip: it counts as free for the next request, as an idle one does.
            let free = idle + room + st.preparing;
            let wanted = self.waiting.load(Ordering::Relaxed) > 0;
            if free >= 2 && !wanted && (idle > 0 || room > 0) {
                // The one left free is an idle (or nearly idle) connection where there is
                // one: a request finding only room for a connection pays for a login first.
                let take_idle = idle >= 2 || (idle == 1 && (room == 0 || st.preparing > 0));
                if let Some(conn) = take_idle.then(|| st.idle.pop()).flatten() {
                    if conn.sockets.is_stale() {
                        crate::status::stats().lost();
                        st.total -= 1;
                        drop(st);
                        drop(conn);
                        st = self.state.lock();
                        continue;
                    }
                    return Ok(Some(self.spare_lease(conn, deadline)));
                }
                st.total += 1;
                drop(st);
                return match Conn::connect(&self.endpoint, &self.info, deadline) {
                    Ok(conn) => Ok(Some(self.spare_lease(conn, deadline))),
                    Err(e) => {
                        self.forget_one(Purpose::Meta);
                        let mut st = self.state.lock();
                        if self.limit_reached(&mut st, &e) {
                            return Ok(None);
                        }
                        Err(e)
                    }
                };
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            self.freed.wait_until(&mut st, until);
        }
    }

    /// An idle connection for a request, one with its data connection prepared first.
    fn take_idle(st: &mut State) -> Option<Conn> {
        let prepared = st
            .idle
            .iter()
            .rposition(|c| c.ftp.prepared_data_connection().is_some());
        match prepared {
            Some(i) => Some(st.idle.remove(i)),
            None => st.idle.pop(),
        }
    }

    /// A lease for a guess: it comes back idle unprepared (see [`Lease`]'s drop).
    fn spare_lease(self: &Arc<Self>, conn: Conn, deadline: Instant) -> Lease {
        let mut lease = self.lease(conn, Purpose::Meta, deadline);
        lease.spare = true;
        lease
    }

    /// Logs in, in the background and all at once, every connection the pool has room for
    /// (within a learned limit), each prepared for its first transfer. For a walk about to
    /// spread over the pool: the logins (3 round trips or more each) then overlap the
    /// walk's first listings instead of following them one by one as guesses find no
    /// connection. Nothing when the pool is full, when a login ahead is under way, or
    /// within [`GROW_RETRY`] of one that failed.
    pub fn grow_ahead(self: &Arc<Self>) {
        let mut st = self.state.lock();
        let failed_lately = st.grow_failed.is_some_and(|t| t.elapsed() < GROW_RETRY);
        if st.growing > 0 || failed_lately || self.closing.load(Ordering::Relaxed) {
            return;
        }
        while self.grow(&mut st) {}
    }

    /// Hands the preparer one more connection to log in, counted in `total` (and as being
    /// prepared and grown) until it comes back, if the pool has room. Whether it did.
    fn grow(self: &Arc<Self>, st: &mut State) -> bool {
        let ok = st.total < self.size_now(st) && self.to_preparer(Job::Grow).is_ok();
        if ok {
            st.total += 1;
            st.preparing += 1;
            st.growing += 1;
        }
        ok
    }

    /// Logs in one more connection ahead, in the background, if the pool has room and
    /// none is being logged in. For the mount: its first connection keeps the probe's data
    /// connection for the first transfer, so it goes idle prepared and nothing else would
    /// log in a second one until the first operation ends; an `ls -l` (a listing, then
    /// another at once) would then wait for that connection's next `EPSV` between the two.
    pub fn grow_one(self: &Arc<Self>) {
        let mut st = self.state.lock();
        if self.info.pipelining() && st.growing == 0 {
            self.grow(&mut st);
        }
    }

    fn take_idle_holder(st: &mut State) -> Option<Box<dyn Reclaimed>> {
        st.holders.retain(|h| h.strong_count() > 0);
        st.holders
            .iter()
            .filter_map(Weak::upgrade)
            .find_map(|h| h.try_take())
    }

    fn lease(self: &Arc<Self>, mut conn: Conn, purpose: Purpose, deadline: Instant) -> Lease {
        // Off for the mount since this connection last worked, perhaps.
        conn.ftp.set_pipelining(self.info.pipelining());
        Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            purpose,
            broken: false,
            deadline,
            returning: false,
            spare: false,
        }
    }

    fn repurpose(&self, lease: &mut Lease, purpose: Purpose, deadline: Instant) {
        lease.deadline = deadline;
        if lease.purpose != purpose {
            let mut st = self.state.lock();
            match purpose {
                Purpose::Transfer => st.transfers += 1,
                Purpose::Meta => st.transfers -= 1,
            }
            lease.purpose = purpose;
        }
    }

    fn forget_one(&self, purpose: Purpose) {
        let mut st = self.state.lock();
        st.total -= 1;
        if purpose == Purpose::Transfer {
            st.transfers -= 1;
        }
        drop(st);
        self.freed.notify_all();
    }

    /// How many connections exist, are busy or idle, and the learned limit, for `ftpfs
    /// status` (`max` is left for the caller). Connections being prepared count as idle.
    pub fn figures(&self) -> crate::status::Connections {
        let st = self.state.lock();
        let idle = st.idle.len() + st.preparing;
        crate::status::Connections {
            open: st.total,
            busy: st.total.saturating_sub(idle),
            idle,
            transfers: st.transfers,
            max: self.size,
            limit: st.limit.map(|(n, _)| n),
        }
    }

    /// Closes idle connections (at unmount); those being prepared are closed when they
    /// come back.
    pub fn shutdown(&self) {
        self.closing.store(true, Ordering::Relaxed);
        let idle = std::mem::take(&mut self.state.lock().idle);
        for conn in idle {
            conn.quit();
        }
    }
}

impl Lease {
    pub fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// What is known about the server this connection is to.
    pub fn pool_info(&self) -> &ServerInfo {
        self.pool.info()
    }

    /// The pool this lease is from.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// The longest wait on a silent server (`-o timeout`).
    pub fn timeout(&self) -> Duration {
        self.pool.endpoint.timeout
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// This lease is being ended in the background and comes back within a round trip: a
    /// checkout waits for it rather than logging in a new connection.
    pub fn coming_back(&mut self) {
        if !self.returning {
            self.returning = true;
            self.pool.state.lock().preparing += 1;
        }
    }

    /// The connection is out of sync or dead: do not hand it out again.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Runs `f` on the connection before the lease's deadline (the watchdog ends it
    /// otherwise) and marks the lease broken if the error says so.
    pub fn run<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let deadline = self.deadline;
        self.run_until(Some(deadline), f)
    }

    /// [`Lease::run`] for a transfer of unknown length: only each wait is bounded (by the
    /// socket timeouts), not the whole.
    pub fn run_unbounded<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.run_until(None, f)
    }

    pub fn run_until<T>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        let conn = self.conn();
        let guard = deadline.map(|d| conn.guard(d));
        let r = f(conn);
        drop(guard);
        match r {
            Err(e) if self.conn().sockets.fired() => {
                self.broken = true;
                Err(Error::Timeout {
                    op: e.op().unwrap_or(Op::Connect),
                })
            }
            Err(e) => {
                if e.breaks_connection() {
                    self.broken = true;
                }
                Err(e)
            }
            ok => ok,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let conn = self.conn.take();
        let mut st = self.pool.state.lock();
        if self.purpose == Purpose::Transfer {
            st.transfers -= 1;
        }
        if self.returning {
            st.preparing -= 1;
        }
        let ahead = self.pool.info.prepare_ahead();
        match conn {
            // One left in MODE Z would compress the next listing or upload: never reused.
            Some(conn) if !self.broken && !conn.mode_z => {
                // A walk ahead takes its connection back at once for the next guess, and
                // sends `EPSV` with its command (one round trip): preparing it first would
                // put the `EPSV`'s round trip before that command instead.
                if !self.spare && prepare::wanted(&conn, ahead) {
                    st.preparing += 1;
                    if let Err(Job::Prepare(conn)) =
                        self.pool.to_preparer(Job::Prepare(Box::new(conn)))
                    {
                        st.preparing -= 1;
                        st.idle.push(*conn);
                    }
                } else {
                    st.idle.push(conn);
                }
                // None ready for the next operation, and room for more: one more,
                // logged in ahead, so that one works while another is prepared (with a
                // single connection, a program working one file at a time would wait
                // for its preparation after every file).
                if ahead && st.idle.is_empty() && st.growing == 0 {
                    self.pool.grow(&mut st);
                }
            }
            _ => {
                if self.broken {
                    crate::status::stats().lost();
                }
                st.total -= 1
            }
        }
        drop(st);
        self.pool.freed.notify_all();
    }
}
