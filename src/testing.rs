//! An in-memory [`Remote`] with injected faults, for testing [`crate::fs::FtpFs`] without a
//! server: "the next listing fails with 421", "reads of this file fail after N bytes",
//! "this listing contains `..` and `a/b`". It counts the calls it gets, so tests can prove
//! that the cache answered instead of the server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::error::{Error, Op, Result};
use crate::remote::{self, Kind, Remote, RemoteEntry, RemoteReader};

/// Where a fault strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next listing of this directory fails.
    List(String),
    /// Reads of this file fail once they reach this offset.
    ReadAt(String, u64),
}

type MakeError = fn() -> Error;

#[derive(Default)]
pub struct MemRemote {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// path → entry; directories are entries of kind Dir, contents are in `data`.
    entries: Mutex<BTreeMap<String, RemoteEntry>>,
    data: Mutex<BTreeMap<String, Arc<Vec<u8>>>>,
    /// Entries returned verbatim by a listing, hostile names included.
    raw: Mutex<BTreeMap<String, Vec<RemoteEntry>>>,
    faults: Mutex<Vec<(Fault, MakeError)>>,
    pub lists: AtomicUsize,
    pub reads: AtomicUsize,
}

fn entry(name: &str, kind: Kind, size: u64) -> RemoteEntry {
    RemoteEntry {
        name: name.to_string(),
        kind,
        size,
        mtime: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        mode: None,
        link_target: None,
    }
}

impl MemRemote {
    pub fn new() -> MemRemote {
        MemRemote::default()
    }

    pub fn add_dir(&self, path: &str) {
        self.inner.entries.lock().insert(
            path.to_string(),
            entry(remote::basename(path), Kind::Dir, 0),
        );
    }

    pub fn add_file(&self, path: &str, content: &[u8]) {
        self.inner.entries.lock().insert(
            path.to_string(),
            entry(remote::basename(path), Kind::File, content.len() as u64),
        );
        self.inner
            .data
            .lock()
            .insert(path.to_string(), Arc::new(content.to_vec()));
    }

    pub fn add_symlink(&self, path: &str, target: &str) {
        let mut e = entry(remote::basename(path), Kind::Symlink, 0);
        e.link_target = Some(target.to_string());
        self.inner.entries.lock().insert(path.to_string(), e);
    }

    pub fn remove(&self, path: &str) {
        self.inner.entries.lock().remove(path);
        self.inner.data.lock().remove(path);
    }

    /// Adds an entry to `dir`'s listing exactly as given, bypassing every check.
    pub fn add_raw(&self, dir: &str, e: RemoteEntry) {
        self.inner
            .raw
            .lock()
            .entry(dir.to_string())
            .or_default()
            .push(e);
    }

    pub fn inject(&self, fault: Fault, make: MakeError) {
        self.inner.faults.lock().push((fault, make));
    }

    pub fn list_calls(&self) -> usize {
        self.inner.lists.load(Ordering::SeqCst)
    }

    pub fn read_calls(&self) -> usize {
        self.inner.reads.load(Ordering::SeqCst)
    }

    fn take_fault(&self, f: &Fault) -> Option<Error> {
        let mut faults = self.inner.faults.lock();
        let i = faults.iter().position(|(g, _)| g == f)?;
        Some((faults.remove(i).1)())
    }
}

impl Remote for MemRemote {
    type Reader = MemReader;

    fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>> {
        self.inner.lists.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.take_fault(&Fault::List(dir.to_string())) {
            return Err(e);
        }
        let entries = self.inner.entries.lock();
        if !dir.is_empty() && entries.get(dir).map(|e| e.kind) != Some(Kind::Dir) {
            return Err(Error::Reply {
                op: Op::List,
                code: 550,
                text: "No such directory".into(),
            });
        }
        let mut out: Vec<RemoteEntry> = entries
            .iter()
            .filter(|(p, _)| remote::parent(p) == dir && !p.is_empty())
            .map(|(_, e)| e.clone())
            .collect();
        out.extend(self.inner.raw.lock().get(dir).cloned().unwrap_or_default());
        Ok(out)
    }

    fn root(&self) -> &str {
        ""
    }

    fn open_reader(&self, path: &str, _size_hint: u64) -> Result<MemReader> {
        Ok(MemReader {
            remote: MemRemote {
                inner: Arc::clone(&self.inner),
            },
            path: path.to_string(),
        })
    }
}

pub struct MemReader {
    remote: MemRemote,
    path: String,
}

impl RemoteReader for MemReader {
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.remote.inner.reads.fetch_add(1, Ordering::SeqCst);
        let faults = self.remote.inner.faults.lock();
        let limit = faults.iter().find_map(|(f, make)| match f {
            Fault::ReadAt(p, at) if *p == self.path => Some((*at, *make)),
            _ => None,
        });
        drop(faults);
        if let Some((at, make)) = limit {
            if offset + len as u64 > at {
                return Err(make());
            }
        }
        let data = self
            .remote
            .inner
            .data
            .lock()
            .get(&self.path)
            .cloned()
            .ok_or(Error::Reply {
                op: Op::Retr,
                code: 550,
                text: "No such file".into(),
            })?;
        let start = (offset as usize).min(data.len());
        let n = len.min(data.len() - start);
        Ok(data[start..start + n].to_vec())
    }
}
