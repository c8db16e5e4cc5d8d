//! Host name lookups with a deadline, and a memory of the last answer.
//!
//! The problem: `getaddrinfo` has no timeout of its own. With a DNS server that does not
//! answer, glibc waits 5 s per attempt, twice, for each name server in resolv.conf, so a
//! reconnect (ftpfs reconnects after every `421`, idle timeout or broken connection) could
//! hold a FUSE request for 30 s and more, past the deadline every other network wait keeps.
//! And a mount that works should not fail because the resolver has a bad minute: the
//! server's address rarely changes while it is mounted.
//!
//! So a lookup runs on a thread of its own and is waited for only until the caller's
//! deadline. At most one lookup per name is in flight: callers that come while one runs
//! wait for it instead of starting more threads against a resolver that is not answering.
//! Each successful answer is remembered; when a lookup fails or is not back in time, the
//! last answer is used (with a warning) if there is one, and with one to fall back on a
//! lookup is waited for only a second, so that during an outage a reconnect does not cost a
//! whole `timeout` first. Only the first lookup, at mount time, has nothing to fall back on. Addresses written as such (`127.0.0.1`, `::1`) never
//! reach the resolver.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Op, Result};

/// How long a lookup is waited for when an earlier answer can stand in for it.
const FRESH_WAIT: Duration = Duration::from_secs(1);

/// How a name is looked up; the system resolver outside tests.
pub type Lookup = dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

/// Lookups of names, each with its last answer.
pub struct Resolver {
    lookup: Arc<Lookup>,
    names: Mutex<HashMap<(String, u16), Arc<Name>>>,
}

/// One name: whether a lookup is running, and what the last one said.
#[derive(Default)]
struct Name {
    state: Mutex<NameState>,
    done: Condvar,
}

#[derive(Default)]
struct NameState {
    in_flight: bool,
    /// Lookups finished so far; a caller waits for this to pass the value it saw.
    finished: u64,
    /// The last lookup's error, if it failed.
    error: Option<String>,
    /// The last successful answer.
    known: Option<Vec<SocketAddr>>,
}

impl Resolver {
    pub fn new(lookup: Arc<Lookup>) -> Resolver {
        Resolver {
            lookup,
            names: Mutex::new(HashMap::new()),
        }
    }

    /// The resolver of this process, asking the system (`getaddrinfo`).
    pub fn system() -> &'static Resolver {
        static SYSTEM: OnceLock<Resolver> = OnceLock::new();
        SYSTEM.get_or_init(|| {
            Resolver::new(Arc::new(|host: &str, port: u16| {
                (host, port).to_socket_addrs().map(Iterator::collect)
            }))
        })
    }

    /// The addresses of `host`, as looked up before `deadline`, or as last known.
    pub fn resolve(&self, host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let name = Arc::clone(
            self.names
                .lock()
                .entry((host.to_string(), port))
                .or_default(),
        );
        let mut st = name.state.lock();
        let target = st.finished + 1;
        if !st.in_flight {
            st.in_flight = true;
            let (lookup, name, host) = (
                Arc::clone(&self.lookup),
                Arc::clone(&name),
                host.to_string(),
            );
            let spawned = crate::signals::spawn_blocked(
                std::thread::Builder::new().name("ftpfs-resolve".into()),
                move || {
                    let answer = lookup(&host, port);
                    let mut st = name.state.lock();
                    match answer {
                        Ok(addrs) if !addrs.is_empty() => {
                            st.known = Some(addrs);
                            st.error = None;
                        }
                        Ok(_) => st.error = Some("no address".into()),
                        Err(e) => st.error = Some(e.to_string()),
                    }
                    st.in_flight = false;
                    st.finished += 1;
                    name.done.notify_all();
                },
            );
            if let Err(e) = spawned {
                st.in_flight = false;
                return Err(Error::from_io(Op::Connect, e));
            }
        }
        // With an answer to fall back on, a fresh one is waited for only briefly: a working
        // resolver answers in milliseconds, and during an outage every reconnect would
        // otherwise cost a whole `timeout` before using the address it already has.
        let wait_by = match st.known {
            Some(_) => deadline.min(Instant::now() + FRESH_WAIT),
            None => deadline,
        };
        while st.finished < target {
            if name.done.wait_until(&mut st, wait_by).timed_out() && st.finished < target {
                return match &st.known {
                    Some(addrs) => {
                        log::warn!("looking up {host} takes too long; using its last address");
                        Ok(addrs.clone())
                    }
                    None => {
                        log::warn!("looking up {host}: no answer before the deadline");
                        Err(Error::Timeout { op: Op::Connect })
                    }
                };
            }
        }
        // A finished lookup left an answer, an error, or both (a failure after a success).
        match (&st.known, &st.error) {
            (Some(addrs), None) => Ok(addrs.clone()),
            (Some(addrs), Some(e)) => {
                log::warn!("looking up {host} failed ({e}); using its last address");
                Ok(addrs.clone())
            }
            (None, e) => Err(Error::from_io(
                Op::Connect,
                std::io::Error::other(format!(
                    "cannot resolve {host}: {}",
                    e.as_deref().unwrap_or("no address")
                )),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A resolver whose answers are scripted: each call takes the next (delay, answer).
    fn scripted(
        answers: Vec<(Duration, std::io::Result<Vec<SocketAddr>>)>,
    ) -> (Resolver, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let answers = Mutex::new(answers.into_iter());
        let counted = Arc::clone(&calls);
        let lookup = move |_: &str, _: u16| {
            counted.fetch_add(1, Ordering::SeqCst);
            let (delay, answer) = answers.lock().next().expect("a scripted answer");
            std::thread::sleep(delay);
            answer
        };
        (Resolver::new(Arc::new(lookup)), calls)
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 21))
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    #[test]
    fn addresses_written_as_such_never_reach_the_resolver() {
        let (r, calls) = scripted(vec![]);
        let got = r.resolve("::1", 2121, soon(100)).unwrap();
        assert_eq!(
            got,
            vec![SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 2121))]
        );
        assert_eq!(r.resolve("127.0.0.1", 21, soon(100)).unwrap()[0].port(), 21);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_resolver_that_does_not_answer_fails_by_the_deadline() {
        let (r, _) = scripted(vec![(Duration::from_secs(2), Ok(vec![addr(1)]))]);
        let start = Instant::now();
        let e = r.resolve("ftp.example", 21, soon(200)).unwrap_err();
        assert!(matches!(e, Error::Timeout { op: Op::Connect }), "{e:?}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn the_last_answer_stands_in_when_the_resolver_hangs_or_fails() {
        let (r, _) = scripted(vec![
            (Duration::ZERO, Ok(vec![addr(1)])),
            (Duration::from_secs(2), Ok(vec![addr(2)])),
            (Duration::ZERO, Err(std::io::Error::other("SERVFAIL"))),
        ]);
        assert_eq!(
            r.resolve("ftp.example", 21, soon(1000)).unwrap(),
            vec![addr(1)]
        );
        // A hung lookup is waited for about FRESH_WAIT, not the whole 10 s deadline.
        let start = Instant::now();
        assert_eq!(
            r.resolve("ftp.example", 21, soon(10_000)).unwrap(),
            vec![addr(1)]
        );
        let took = start.elapsed();
        assert!(
            took >= FRESH_WAIT && took < Duration::from_secs(5),
            "{took:?}"
        );
        // The slow lookup finishes in the background and its answer is kept.
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(
            r.resolve("ftp.example", 21, soon(1000)).unwrap(),
            vec![addr(2)]
        );
    }

    #[test]
    fn a_failed_first_lookup_is_an_error_with_the_reason() {
        let (r, _) = scripted(vec![(
            Duration::ZERO,
            Err(std::io::Error::other("NXDOMAIN")),
        )]);
        let e = r.resolve("nowhere.example", 21, soon(1000)).unwrap_err();
        assert!(e.to_string().contains("NXDOMAIN"), "{e}");
    }

    #[test]
    fn callers_during_a_hung_lookup_wait_for_it_instead_of_starting_more() {
        let (r, calls) = scripted(vec![(Duration::from_millis(500), Ok(vec![addr(3)]))]);
        let r = Arc::new(r);
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || r.resolve("ftp.example", 21, soon(2000)))
            })
            .collect();
        for w in waiters {
            assert_eq!(w.join().unwrap().unwrap(), vec![addr(3)]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
