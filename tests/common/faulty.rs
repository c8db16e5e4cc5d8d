//! A real FTP server that fails when told to: libunftp in-process over a storage back-end
//! that wraps its plain filesystem one and injects faults per command.
//!
//! The scripted fake server (`fake.rs`) covers what no server will do by itself (garbage,
//! endless replies, stalls). Here the dialogue stays libunftp's own, so the replies,
//! reply texts and data-connection handling are a real server's, and only the storage
//! misbehaves the way a busy or full disk does: `450` (busy), `451` (local error), `452`
//! (no space), `550` (missing, denied), `552` (quota), `426` (a transfer cut after N
//! bytes), or a slow answer. Every call is recorded with its path and start offset, so a
//! test can tell a resumed download from a restarted one and count retries exactly.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use unftp_core::auth::UserDetail;
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Result, StorageBackend};
use unftp_sbe_fs::{Filesystem, Meta};

/// The storage calls a fault can be attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    List,
    Retr,
    Stor,
    Dele,
    Mkd,
    Rmd,
    Rename,
}

/// What goes wrong.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Fails with the reply libunftp sends for this kind: `TransientFileNotAvailable` 450,
    /// `LocalError` 451, `InsufficientStorageSpaceError` 452, `PermanentFileNotAvailable`
    /// 550 "File not found", `PermissionDenied` 550 "Permission denied",
    /// `ExceededStorageAllocationError` 552, `ConnectionClosed` 426.
    Fail(ErrorKind),
    /// The transfer moves this many bytes, then breaks as a reset connection would: the
    /// data connection is closed and the reply is `426`.
    CutAfter(u64),
    /// The storage takes this long before it starts; the data connection is open and silent
    /// meanwhile (or, for commands without data, the reply is late).
    Slow(Duration),
}

struct Rule {
    verb: Verb,
    fault: Fault,
    /// How many more calls it applies to; `None` for all of them.
    times: Option<usize>,
}

/// One storage call as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub verb: Verb,
    pub path: String,
    /// The `REST` offset of a transfer, else 0.
    pub offset: u64,
    /// Whether a fault was injected into it.
    pub faulted: bool,
}

/// The faults to inject, shared between the test and the server's sessions.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<Vec<Call>>,
}

impl Faults {
    /// The next `times` calls of `verb` get `fault`, after the faults already planned.
    pub fn next(&self, verb: Verb, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            verb,
            fault,
            times: Some(times),
        });
    }

    /// Every call of `verb` gets `fault` until [`Faults::clear`].
    pub fn always(&self, verb: Verb, fault: Fault) {
        self.rules.lock().unwrap().push(Rule {
            verb,
            fault,
            times: None,
        });
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// Whether every counted fault has been used up.
    pub fn used_up(&self) -> bool {
        self.rules
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.times == Some(0))
    }

    /// The calls of `verb` so far, in order.
    pub fn calls(&self, verb: Verb) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.verb == verb)
            .cloned()
            .collect()
    }

    /// Records a call and takes the fault it gets, if any.
    fn take(&self, verb: Verb, path: &Path, offset: u64) -> Option<Fault> {
        let fault = {
            let mut rules = self.rules.lock().unwrap();
            let rule = rules
                .iter_mut()
                .find(|r| r.verb == verb && r.times != Some(0));
            rule.map(|r| {
                if let Some(n) = &mut r.times {
                    *n -= 1;
                }
                r.fault
            })
        };
        self.calls.lock().unwrap().push(Call {
            verb,
            path: path.to_string_lossy().into_owned(),
            offset,
            faulted: fault.is_some(),
        });
        fault
    }
}

/// libunftp's filesystem back-end with [`Faults`] in front of it.
#[derive(Debug)]
pub struct FaultyFs {
    inner: Filesystem,
    faults: Arc<Faults>,
}

impl Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl FaultyFs {
    pub fn new(root: PathBuf, faults: Arc<Faults>) -> FaultyFs {
        FaultyFs {
            inner: Filesystem::new(root).expect("the server's root exists"),
            faults,
        }
    }

    /// Applies a fault that acts before the storage is touched: a failure, or a delay.
    /// Returns the byte limit of a cut transfer, if that is the fault.
    async fn before(&self, verb: Verb, path: &Path, offset: u64) -> Result<Option<u64>> {
        match self.faults.take(verb, path, offset) {
            None => Ok(None),
            Some(Fault::Fail(kind)) => Err(Error::from(kind)),
            Some(Fault::Slow(d)) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
            Some(Fault::CutAfter(n)) => Ok(Some(n)),
        }
    }
}

/// A reader that delivers `left` bytes and then fails as a reset connection does.
struct Cut<R> {
    inner: R,
    left: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Cut<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected: transfer cut",
            )));
        }
        let want = buf.remaining().min(self.left as usize);
        let mut part = buf.take(want);
        let r = Pin::new(&mut self.inner).poll_read(cx, &mut part);
        let n = part.filled().len();
        if let Poll::Ready(Ok(())) = r {
            // SAFETY: `part` filled these bytes of `buf`'s unfilled region.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            self.left -= n as u64;
        }
        r
    }
}

#[async_trait::async_trait]
impl<User: UserDetail + 'static> StorageBackend<User> for FaultyFs {
    type Metadata = Meta;

    fn supported_features(&self) -> u32 {
        <Filesystem as StorageBackend<User>>::supported_features(&self.inner)
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &User,
        path: P,
    ) -> Result<Self::Metadata> {
        self.inner.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &User,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Self::Metadata>>> {
        self.before(Verb::List, path.as_ref(), 0).await?;
        self.inner.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &User,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        let cut = self.before(Verb::Retr, path.as_ref(), start_pos).await?;
        let reader = self.inner.get(user, path, start_pos).await?;
        Ok(match cut {
            Some(left) => Box::new(Cut {
                inner: reader,
                left,
            }),
            None => reader,
        })
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &User,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        match self.before(Verb::Stor, path.as_ref(), start_pos).await? {
            Some(left) => {
                let cut = Cut { inner: input, left };
                self.inner.put(user, cut, path, start_pos).await
            }
            None => self.inner.put(user, input, path, start_pos).await,
        }
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &User, path: P) -> Result<()> {
        self.before(Verb::Dele, path.as_ref(), 0).await?;
        self.inner.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &User, path: P) -> Result<()> {
        self.before(Verb::Mkd, path.as_ref(), 0).await?;
        self.inner.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &User,
        from: P,
        to: P,
    ) -> Result<()> {
        self.before(Verb::Rename, from.as_ref(), 0).await?;
        self.inner.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &User, path: P) -> Result<()> {
        self.before(Verb::Rmd, path.as_ref(), 0).await?;
        self.inner.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &User, path: P) -> Result<()> {
        self.inner.cwd(user, path).await
    }
}

/// `ErrorKind` for tests, so they need not name the unftp-core crate.
#[allow(unused_imports)]
pub use unftp_core::storage::ErrorKind as Kind;
