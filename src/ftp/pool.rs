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
//! Locks: the pool's mutex is never held across network I/O. Connecting, and closing a
//! reclaimed stream, happen after it is released.

use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::conn::{Conn, Endpoint, ServerInfo};
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

pub struct Pool {
    endpoint: Endpoint,
    info: Arc<ServerInfo>,
    size: usize,
    state: Mutex<State>,
    freed: Condvar,
}

struct State {
    idle: Vec<Conn>,
    /// Connections that exist or are being made (idle + leased + connecting).
    total: usize,
    /// Leases held for transfers.
    transfers: usize,
    holders: Vec<Weak<dyn Reclaim>>,
}

/// A connection checked out of the pool. Returned on drop, unless marked broken.
pub struct Lease {
    pool: Arc<Pool>,
    conn: Option<Conn>,
    purpose: Purpose,
    broken: bool,
}

impl Pool {
    pub fn new(endpoint: Endpoint, info: Arc<ServerInfo>, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            endpoint,
            info,
            size: size.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                total: 0,
                transfers: 0,
                holders: Vec::new(),
            }),
            freed: Condvar::new(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn max_transfers(&self) -> usize {
        (self.size - 1).max(1)
    }

    /// Registers a holder whose connection may be reclaimed when the pool runs dry.
    pub fn register(&self, holder: Weak<dyn Reclaim>) {
        let mut st = self.state.lock();
        st.holders.retain(|h| h.strong_count() > 0);
        st.holders.push(holder);
    }

    /// Checks out a connection, connecting a new one if the pool has room. Waits at most the
    /// endpoint's timeout for one to come free.
    pub fn checkout(self: &Arc<Self>, purpose: Purpose) -> Result<Lease> {
        let deadline = Instant::now() + self.endpoint.timeout;
        let mut st = self.state.lock();
        loop {
            let slot_ok = purpose == Purpose::Meta || st.transfers < self.max_transfers();
            if slot_ok {
                if let Some(conn) = st.idle.pop() {
                    if purpose == Purpose::Transfer {
                        st.transfers += 1;
                    }
                    return Ok(self.lease(conn, purpose));
                }
                if st.total < self.size {
                    st.total += 1;
                    if purpose == Purpose::Transfer {
                        st.transfers += 1;
                    }
                    drop(st);
                    return match Conn::connect(&self.endpoint, &self.info) {
                        Ok(conn) => Ok(self.lease(conn, purpose)),
                        Err(e) => {
                            self.forget_one(purpose);
                            Err(e)
                        }
                    };
                }
            }
            // Nothing free: take the connection of an idle streaming reader, if any.
            if let Some(taken) = Self::take_idle_holder(&mut st) {
                drop(st);
                let lease = taken.into_lease();
                match lease {
                    Some(mut lease) => {
                        self.repurpose(&mut lease, purpose);
                        return Ok(lease);
                    }
                    None => {
                        // It broke while closing; its slot is free now, so try again.
                        st = self.state.lock();
                        continue;
                    }
                }
            }
            if self.freed.wait_until(&mut st, deadline).timed_out() {
                log::warn!(
                    "no FTP connection came free within {:?} ({} in use)",
                    self.endpoint.timeout,
                    st.total
                );
                return Err(Error::Timeout { op: Op::Connect });
            }
        }
    }

    fn take_idle_holder(st: &mut State) -> Option<Box<dyn Reclaimed>> {
        st.holders.retain(|h| h.strong_count() > 0);
        st.holders
            .iter()
            .filter_map(Weak::upgrade)
            .find_map(|h| h.try_take())
    }

    fn lease(self: &Arc<Self>, conn: Conn, purpose: Purpose) -> Lease {
        Lease {
            pool: Arc::clone(self),
            conn: Some(conn),
            purpose,
            broken: false,
        }
    }

    fn repurpose(&self, lease: &mut Lease, purpose: Purpose) {
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

    /// Closes idle connections (at unmount).
    pub fn shutdown(&self) {
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

    /// The connection is out of sync or dead: do not hand it out again.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Runs `f` on the connection and marks the lease broken if the error says so.
    pub fn run<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let r = f(self.conn());
        if let Err(e) = &r {
            if e.breaks_connection() {
                self.broken = true;
            }
        }
        r
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let conn = self.conn.take();
        let mut st = self.pool.state.lock();
        if self.purpose == Purpose::Transfer {
            st.transfers -= 1;
        }
        match conn {
            Some(conn) if !self.broken => st.idle.push(conn),
            _ => st.total -= 1,
        }
        drop(st);
        self.pool.freed.notify_all();
    }
}
