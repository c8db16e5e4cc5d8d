//! Trying again: which failures, how often, how long to wait.
//!
//! Servers restart, drop idle connections, answer `421`/`450`/`451` under load. Each of these
//! says "not now", and the caller should not see it if a second attempt a moment later works.
//! What may be repeated is decided by [`Error::is_retryable`]: a 4xx reply always (the server
//! did not do it), a broken connection only for operations that are safe to repeat. The
//! waits grow exponentially with jitter (so a pool of connections does not hammer a
//! recovering server in lockstep), are capped at `max_delay`, and the whole operation never
//! runs past its deadline: an attempt that could not start before it is not made.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How an operation is retried (`-o retries=`, `-o retry_delay=`, `-o deadline=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Attempts after the first.
    pub retries: u32,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// How long one operation (all its attempts) may take.
    pub deadline: Duration,
}

pub const DEFAULT_RETRIES: u32 = 5;
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// The first wait; each later one doubles.
const BASE_DELAY: Duration = Duration::from_millis(100);

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            retries: DEFAULT_RETRIES,
            max_delay: DEFAULT_MAX_DELAY,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// Whether repeating an operation whose outcome is unknown is harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Listing, reading, STOR of a whole file, SITE CHMOD, MFMT: the same result twice.
    Safe,
    /// RNFR/RNTO, DELE, MKD, RMD, APPE: a second try after a lost reply could fail or
    /// double what the first did, so only failures that prove nothing happened are retried.
    Unsafe,
}

impl Policy {
    /// The deadline of an operation starting now.
    pub fn deadline_from_now(&self) -> Instant {
        Instant::now() + self.deadline
    }

    /// Runs `f` until it succeeds, fails for good, runs out of attempts or of time. `f` gets
    /// the operation's deadline, which it passes on to whatever it waits for.
    pub fn run<T>(
        &self,
        what: &dyn std::fmt::Display,
        repeat: Repeat,
        mut f: impl FnMut(Instant) -> Result<T>,
    ) -> Result<T> {
        let deadline = self.deadline_from_now();
        self.run_until(
            what,
            deadline,
            |e| e.is_retryable(repeat == Repeat::Safe),
            &mut f,
        )
    }

    /// [`Policy::run`] with an explicit deadline and retry predicate.
    pub fn run_until<T>(
        &self,
        what: &dyn std::fmt::Display,
        deadline: Instant,
        retryable: impl Fn(&Error) -> bool,
        mut f: impl FnMut(Instant) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f(deadline) {
                Ok(v) => {
                    if attempt > 0 {
                        log::info!("{what}: succeeded on attempt {}", attempt + 1);
                    }
                    return Ok(v);
                }
                Err(e) => {
                    attempt += 1;
                    if attempt > self.retries || !retryable(&e) {
                        return Err(e);
                    }
                    let delay = self.delay(attempt, &e);
                    if Instant::now() + delay >= deadline {
                        log::warn!("{what}: {e}; no time left for another attempt");
                        return Err(e);
                    }
                    log::warn!(
                        "{what}: {e}; retrying in {} ms ({attempt}/{})",
                        delay.as_millis(),
                        self.retries
                    );
                    crate::status::stats().retry();
                    std::thread::sleep(delay);
                }
            }
        }
    }

    /// The wait before attempt `attempt + 1`: 100 ms doubling, capped, times a random factor
    /// in [0.5, 1). `120 ready in n minutes` asks for patience: at least a second.
    pub fn delay(&self, attempt: u32, e: &Error) -> Duration {
        let exp = BASE_DELAY.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let jittered = capped.mul_f64(0.5 + 0.5 * jitter());
        if e.code() == Some(120) {
            jittered.max(Duration::from_secs(1).min(self.max_delay))
        } else {
            jittered
        }
    }
}

/// A number in [0, 1) that differs between threads and calls; quality does not matter.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Op;
    use std::cell::Cell;

    fn busy() -> Error {
        Error::Reply {
            op: Op::List,
            code: 450,
            text: "busy".into(),
        }
    }

    fn quick(retries: u32) -> Policy {
        Policy {
            retries,
            max_delay: Duration::from_millis(5),
            deadline: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_transient_failure_is_retried_until_it_works() {
        let calls = Cell::new(0);
        let r = quick(3).run(&"t", Repeat::Unsafe, |_| {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(busy())
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.unwrap(), 7);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn retries_stop_at_the_configured_count() {
        let calls = Cell::new(0);
        let r: Result<()> = quick(2).run(&"t", Repeat::Safe, |_| {
            calls.set(calls.get() + 1);
            Err(busy())
        });
        assert_eq!(r.unwrap_err().code(), Some(450));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_permanent_failure_is_not_retried() {
        let calls = Cell::new(0);
        let r: Result<()> = quick(5).run(&"t", Repeat::Safe, |_| {
            calls.set(calls.get() + 1);
            Err(Error::Reply {
                op: Op::Store,
                code: 552,
                text: String::new(),
            })
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn no_attempt_starts_after_the_deadline() {
        let p = Policy {
            retries: 1000,
            max_delay: Duration::from_millis(50),
            deadline: Duration::from_millis(300),
        };
        let start = Instant::now();
        let r: Result<()> = p.run(&"t", Repeat::Safe, |_| Err(busy()));
        assert!(r.is_err());
        assert!(start.elapsed() < Duration::from_millis(400));
    }

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let p = Policy {
            retries: 10,
            max_delay: Duration::from_secs(2),
            deadline: Duration::from_secs(60),
        };
        for attempt in 1..12 {
            let d = p.delay(attempt, &busy());
            assert!(d <= Duration::from_secs(2), "{attempt}: {d:?}");
            let full = BASE_DELAY * (1 << (attempt - 1).min(16)).min(20);
            assert!(
                d >= full.min(Duration::from_secs(2)) / 2,
                "{attempt}: {d:?}"
            );
        }
    }
}
