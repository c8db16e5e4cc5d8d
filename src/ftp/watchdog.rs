//! Deadlines that hold however a server misbehaves.
//!
//! Socket timeouts bound each *wait*: a server that says nothing for `timeout` seconds is
//! given up on. They do not bound an *operation*: a server that drips one byte every few
//! seconds, or a retry loop meeting a second stall after the first, would keep the caller
//! (and the process in the kernel behind it) waiting far longer than anybody expects. So an
//! operation also has a deadline, and a single watchdog thread enforces it: when the
//! deadline passes while the operation still runs, it shuts down the connection's sockets
//! (control and the current data connection). Every blocked read or write on them returns
//! at once, the operation fails, the connection is dropped, and [`Sockets::fired`] tells the
//! caller that the cause was the deadline (reported as `ETIMEDOUT`).
//!
//! Arming costs a mutex and a vector push; the thread sleeps until the earliest deadline.

use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// The sockets of one control connection, as the watchdog sees them.
pub struct Sockets {
    ctrl: TcpStream,
    data: Mutex<Option<TcpStream>>,
    fired: AtomicBool,
}

impl Sockets {
    pub fn new(ctrl: TcpStream) -> Arc<Sockets> {
        Arc::new(Sockets {
            ctrl,
            data: Mutex::new(None),
            fired: AtomicBool::new(false),
        })
    }

    /// Remembers the data connection just opened, so a deadline can end it too.
    pub fn set_data(&self, s: Option<TcpStream>) {
        *self.data.lock() = s;
    }

    /// Forgets the data connection. Must come before the transfer's stream is closed: the
    /// copy kept here is a second descriptor of the same socket, and while it is open,
    /// closing the stream sends no FIN, so the server would wait for the end of an upload
    /// (or of our reading) forever.
    pub fn end_data(&self) {
        *self.data.lock() = None;
    }

    /// Whether a deadline shut these sockets down.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }

    fn shut(&self) {
        self.fired.store(true, Ordering::Relaxed);
        self.kill();
    }

    /// Ends a connection that is being given up on, so that nothing (suppaftp finalizing a
    /// dropped transfer, for one) waits on it any more.
    pub fn kill(&self) {
        let _ = self.ctrl.shutdown(Shutdown::Both);
        if let Some(d) = self.data.lock().as_ref() {
            let _ = d.shutdown(Shutdown::Both);
        }
    }

    /// Whether an idle control connection has been closed or spoken to by the server. FTP
    /// servers say nothing unprompted except goodbye (`421 Timeout`, then close), so any
    /// readable byte or hang-up on an idle connection means it is dead. One `poll` with a
    /// zero timeout: no round trip, unlike `NOOP`.
    pub fn is_stale(&self) -> bool {
        self.ctrl_readable(std::time::Duration::ZERO)
    }

    /// How long a read on the control connection waits (the socket is shared with the FTP
    /// client, which reads the replies).
    pub fn set_reply_timeout(&self, wait: std::time::Duration) {
        if let Err(e) = self.ctrl.set_read_timeout(Some(wait)) {
            log::debug!("could not set the reply timeout: {e}");
        }
    }

    /// Whether the control connection has something to read (or was closed) within `wait`.
    pub fn ctrl_readable(&self, wait: std::time::Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.ctrl.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd; the fd stays open while `self` lives.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        n != 0
    }
}

struct Entry {
    id: u64,
    deadline: Instant,
    sockets: Arc<Sockets>,
}

struct Armed {
    entries: Vec<Entry>,
    /// When the thread will look next; `None` while it sleeps until told.
    next_wake: Option<Instant>,
}

struct Watchdog {
    armed: Mutex<Armed>,
    changed: Condvar,
    next_id: AtomicU64,
}

fn watchdog() -> &'static Watchdog {
    static W: OnceLock<&'static Watchdog> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
            armed: Mutex::new(Armed {
                entries: Vec::new(),
                next_wake: None,
            }),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        }));
        crate::signals::spawn_blocked(
            std::thread::Builder::new().name("ftpfs-watchdog".into()),
            move || w.run(),
        )
        .expect("spawning the watchdog thread");
        w
    })
}

impl Watchdog {
    fn run(&self) {
        let mut armed = self.armed.lock();
        loop {
            let now = Instant::now();
            let mut i = 0;
            while i < armed.entries.len() {
                if armed.entries[i].deadline <= now {
                    let e = armed.entries.swap_remove(i);
                    log::warn!("operation deadline passed; closing its FTP connection");
                    e.sockets.shut();
                } else {
                    i += 1;
                }
            }
            armed.next_wake = armed.entries.iter().map(|e| e.deadline).min();
            match armed.next_wake {
                Some(next) => {
                    self.changed.wait_until(&mut armed, next);
                }
                None => self.changed.wait(&mut armed),
            }
        }
    }
}

/// Disarms its deadline when dropped.
pub struct Guard {
    id: u64,
}

/// Shuts `sockets` down at `deadline` unless the returned guard is dropped first.
pub fn arm(sockets: &Arc<Sockets>, deadline: Instant) -> Guard {
    let w = watchdog();
    let id = w.next_id.fetch_add(1, Ordering::Relaxed);
    let mut armed = w.armed.lock();
    // Wake the thread only if it would otherwise sleep past this deadline: guards are
    // mostly dropped long before their deadline, and arming happens per read call.
    let earliest = armed.next_wake.is_none_or(|t| deadline < t);
    if earliest {
        armed.next_wake = Some(deadline);
    }
    armed.entries.push(Entry {
        id,
        deadline,
        sockets: Arc::clone(sockets),
    });
    drop(armed);
    if earliest {
        w.changed.notify_one();
    }
    Guard { id }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut armed = watchdog().armed.lock();
        if let Some(i) = armed.entries.iter().position(|e| e.id == self.id) {
            armed.entries.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::Duration;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn a_blocked_read_ends_when_the_deadline_passes() {
        let (c, _server) = pair();
        let sockets = Sockets::new(c.try_clone().unwrap());
        let start = Instant::now();
        let _g = arm(&sockets, start + Duration::from_millis(200));
        let mut buf = [0u8; 1];
        let n = (&c).read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0);
        assert!(sockets.fired());
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_disarmed_deadline_does_nothing() {
        let (c, _server) = pair();
        let sockets = Sockets::new(c.try_clone().unwrap());
        drop(arm(&sockets, Instant::now() + Duration::from_millis(50)));
        std::thread::sleep(Duration::from_millis(150));
        assert!(!sockets.fired());
        assert!(!sockets.is_stale());
    }

    #[test]
    fn a_connection_the_server_closed_is_stale() {
        let (c, server) = pair();
        let sockets = Sockets::new(c);
        drop(server);
        std::thread::sleep(Duration::from_millis(50));
        assert!(sockets.is_stale());
    }
}
