//! Data connections opened before they are needed.
//!
//! Every listing and transfer needs a data connection, and in passive mode opening one costs
//! a round trip before the transfer command can even be sent (`EPSV`, its `229`, then a TCP
//! handshake, which on a real network is one more). At 50 ms per round trip that was a third
//! of a small file's upload and half of a random read. So a connection that comes back to
//! the pool after using its data connection does not go idle at once: a thread of its own
//! sends `EPSV`, connects (suppaftp keeps the socket, through our patched
//! `prepare_data_connection`), and only then puts it back. The next transfer on it sends
//! only its command.
//!
//! - A checkout that finds nothing idle but a connection being prepared waits for it
//!   (at most one round trip) instead of logging in a new one (three or more: the
//!   greeting, `USER` with `PASS`, the set-up; see [`super::session`]).
//! - A program that works one file at a time (`cp -r`, `tar`) would wait for the one
//!   connection it uses to be prepared after every file, which gains nothing. So when a
//!   connection comes back and none is idle, and the pool has room, the thread logs in
//!   one more in the background (one at a time): the program then alternates, one
//!   connection working while another is prepared. A random reader, whose abandoned
//!   transfers end in the background, grows the pool the same way.
//! - A prepared connection the server closed, or one older than suppaftp's
//!   `PREPARED_MAX_AGE`, is noticed when it is about to be used and replaced by a fresh
//!   `EPSV` then, as without preparation.
//! - A prepared connection is closed, unused, when the connection changes directory for a
//!   relative `LIST` (`CWD`) or `MODE`: libunftp fixes a data connection's directory when
//!   it accepts it, so a `LIST` after a `CWD` on a connection prepared before listed the
//!   old directory. The mount's `CWD` to its root keeps it: every other data command names
//!   an absolute path. Closing one unused is avoided where it can be: libunftp gives the
//!   next transfer to the data connection it accepted last, and it may accept a closed
//!   one after the next `EPSV` (see [`super::active`], whose test connection is the first
//!   prepared one for that reason).
//! - Back to back, preparing costs more than it saves: the `EPSV` of a connection that is
//!   wanted again at once stands between two transfers. A connection that answered a
//!   passive command once sends the next one together with the transfer command (suppaftp's
//!   `pipelined_command`), one round trip for both; so a connection used for a walk ahead
//!   (which takes its next guess at once) goes back idle unprepared.
//! - After a small upload the `EPSV` is on its way already (written before the upload's
//!   `226`, see [`super::upload`]): the thread only reads its `229` and connects.
//! - Nothing is prepared in active mode (the server connects to us, per transfer), or with
//!   `-o pipelining=off`, or once the server lost pipelined commands, or on a link whose
//!   round trip was measured under 1 ms (the least of the logins' set-up round trips, see
//!   [`super::caps::ServerInfo::prepare_ahead`]). There the round trip saved is worth less
//!   than the work: on loopback, where the server shares the cores, the `EPSV` and the
//!   connection set up while the next transfer is being served made random 4 KiB reads
//!   0.9 ms where they took 0.4 ms without. Nor is a connection logged in ahead there to
//!   be prepared; a transfer sends its `EPSV` with its command (see above), one round trip.
//!   A later login still opens its first data connection with its set-up (see
//!   [`super::session`]), in the same round trip.
//!
//! Locks: the pool's lock is held to hand a connection over, never during the `EPSV`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::conn::Conn;
use super::pool::Pool;

/// Work for the thread.
pub(super) enum Job {
    /// Prepare this connection's next data connection, then put it back idle.
    Prepare(Box<Conn>),
    /// Log in one more connection (already counted in the pool's total), prepare it (with
    /// pipelining), and put it idle.
    Grow,
}

/// Whether `conn`, coming back to the pool, should be prepared before it goes idle;
/// `ahead`: [`super::caps::ServerInfo::prepare_ahead`].
pub(super) fn wanted(conn: &Conn, ahead: bool) -> bool {
    // An upload that wrote its next `EPSV` early left the reply to be read here.
    conn.ftp.passive_pending()
        || (ahead && conn.active.is_none() && conn.ftp.prepared_data_connection().is_none())
}

/// Runs `job` on a thread of its own (preparations of several connections overlap: one
/// thread for all made a returning connection wait a round trip per connection ahead of
/// it, and a login ahead five). `Err` gives the job back when no thread can be made.
pub(super) fn start(pool: Arc<Pool>, job: Job) -> Result<(), Job> {
    let slot = Arc::new(Mutex::new(Some(job)));
    let taken = Arc::clone(&slot);
    // The first ones start before the daemon's main thread blocks the stop signals: a
    // SIGTERM landing on one would end the process (see `signals`).
    let spawned = crate::signals::spawn_blocked(
        std::thread::Builder::new().name("ftpfs-prepare".into()),
        move || {
            if let Some(job) = taken.lock().take() {
                run(&pool, job);
            }
        },
    );
    match spawned {
        Ok(_) => Ok(()),
        Err(e) => {
            log::debug!("no thread to prepare a data connection ({e})");
            slot.lock().take().map_or(Ok(()), Err)
        }
    }
}

fn run(pool: &Pool, job: Job) {
    match job {
        Job::Prepare(conn) => {
            // The `EPSV` an upload wrote before its `226` (see `super::upload`): if its reply
            // never comes, the server lost a command sent during a transfer, and the next
            // upload must not write one early again (each would cost a reply timeout here).
            let early = conn.ftp.passive_pending();
            let conn = prepare(*conn, pool.endpoint().timeout);
            if early && conn.is_none() {
                pool.info().no_early_passive(
                    "the EPSV written before an upload's reply went unanswered",
                    &pool.endpoint().display(),
                );
            }
            pool.prepared(conn, false);
        }
        Job::Grow => {
            let deadline = Instant::now() + pool.endpoint().timeout;
            match Conn::connect(pool.endpoint(), pool.info(), deadline) {
                // Not prepared without pipelining (`-o pipelining=off`, or a server that
                // lost pipelined commands): logged in ahead for a walk only.
                Ok(conn) if !pool.info().prepare_ahead() => pool.prepared(Some(conn), true),
                Ok(conn) => {
                    let conn = prepare(conn, pool.endpoint().timeout);
                    pool.prepared(conn, true);
                }
                Err(e) => pool.not_grown(&e),
            }
        }
    }
}

/// `EPSV` and connect, within `timeout`. The connection back, or `None` if it broke (a
/// refusal leaves it in step and unprepared: the next transfer asks itself).
fn prepare(conn: Conn, timeout: Duration) -> Option<Conn> {
    let guard = conn.guard(Instant::now() + timeout);
    let r = conn.ftp.prepare_data_connection();
    drop(guard);
    match r {
        _ if conn.sockets.fired() => {
            log::debug!("preparing a data connection timed out; the connection is dropped");
            None
        }
        Ok(()) => {
            log::debug!("prepared a data connection");
            Some(conn)
        }
        Err(suppaftp::FtpError::UnexpectedResponse(r)) => {
            log::debug!(
                "preparing a data connection: {}",
                super::conn::refusal_of(&r)
            );
            Some(conn)
        }
        Err(e) => {
            log::debug!("preparing a data connection failed ({e}); the connection is dropped");
            None
        }
    }
}
