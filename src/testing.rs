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
use crate::remote::{self, Kind, Remote, RemoteEntry, RemoteReader, Upload, UploadStream};

/// Where a fault strikes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next listing of this directory fails.
    List(String),
    /// Reads of this file fail once they reach this offset.
    ReadAt(String, u64),
    /// The next change of this kind ("store", "append", "rename", "delete", "mkdir",
    /// "rmdir", "chmod", "mtime") to this path fails. "append-partial" makes the next APPE
    /// break after half of its bytes reached the file.
    Call(&'static str, String),
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
    pub stores: AtomicUsize,
    pub streams: AtomicUsize,
    /// Every STOR fails with this error while set (e.g. the connection dropped mid-transfer).
    store_error: Mutex<Option<MakeError>>,
    /// Refuse RNTO onto an existing name with 553, as some servers do.
    refuse_rename_onto: std::sync::atomic::AtomicBool,
    pub copies: AtomicUsize,
    /// The server has no server-side copy, as most do not.
    no_copy: std::sync::atomic::AtomicBool,
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
        let mut e = entry(remote::basename(path), Kind::File, content.len() as u64);
        // Keep the mode a file had, as a server does when a file is overwritten.
        if let Some(old) = self.inner.entries.lock().get(path) {
            e.mode = old.mode;
            e.mtime = Some(old.mtime.unwrap_or(UNIX_EPOCH) + Duration::from_secs(1));
        }
        self.inner.entries.lock().insert(path.to_string(), e);
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

impl MemRemote {
    fn fault(&self, verb: &'static str, path: &str) -> Result<()> {
        match self.take_fault(&Fault::Call(verb, path.to_string())) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn missing(op: Op) -> Error {
        Error::Reply {
            op,
            code: 550,
            text: "No such file or directory".into(),
        }
    }

    fn need_parent(&self, path: &str, op: Op) -> Result<()> {
        let parent = remote::parent(path);
        let entries = self.inner.entries.lock();
        if parent.is_empty() || entries.get(parent).map(|e| e.kind) == Some(Kind::Dir) {
            Ok(())
        } else {
            Err(Self::missing(op))
        }
    }

    /// The content of a file, for assertions.
    pub fn content(&self, path: &str) -> Option<Vec<u8>> {
        self.inner.data.lock().get(path).map(|d| d.to_vec())
    }

    /// The mode bits set on `path` (by `chmod` or `add_raw`), if any.
    pub fn mode(&self, path: &str) -> Option<u32> {
        self.inner.entries.lock().get(path).and_then(|e| e.mode)
    }

    pub fn exists(&self, path: &str) -> bool {
        self.inner.entries.lock().contains_key(path)
    }

    /// Makes every STOR fail with `452` (a full disk), after the data was sent, and leave
    /// nothing behind, until called with `false`.
    pub fn fail_all_stores(&self, on: bool) {
        let full: MakeError = || Error::Reply {
            op: Op::Store,
            code: 452,
            text: "Insufficient storage space".into(),
        };
        self.fail_stores_with(on.then_some(full));
    }

    /// Makes every STOR fail with `make()` after its data was sent, until `None`.
    pub fn fail_stores_with(&self, make: Option<MakeError>) {
        *self.inner.store_error.lock() = make;
    }

    /// Makes RNTO onto an existing name fail with 553, as some servers do.
    pub fn refuse_rename_onto_existing(&self, on: bool) {
        self.inner.refuse_rename_onto.store(on, Ordering::SeqCst);
    }

    /// Every path that exists.
    pub fn paths(&self) -> Vec<String> {
        self.inner.entries.lock().keys().cloned().collect()
    }

    /// Server-side copies asked for (refused ones included).
    pub fn copy_calls(&self) -> usize {
        self.inner.copies.load(Ordering::SeqCst)
    }

    /// Makes the server refuse server-side copies, as most servers do.
    pub fn without_copy(&self, on: bool) {
        self.inner.no_copy.store(on, Ordering::SeqCst);
    }

    pub fn store_calls(&self) -> usize {
        self.inner.stores.load(Ordering::SeqCst)
    }

    /// How many streamed uploads were started.
    pub fn stream_calls(&self) -> usize {
        self.inner.streams.load(Ordering::SeqCst)
    }
}

impl Remote for MemRemote {
    type Reader = MemReader;

    fn store(&self, path: &str, data: &dyn Upload) -> Result<()> {
        self.inner.stores.fetch_add(1, Ordering::SeqCst);
        self.need_parent(path, Op::Store)?;
        let mut buf = Vec::new();
        data.open()?.read_to_end(&mut buf).map_err(Error::Spool)?;
        self.fault("store", path)?;
        if let Some(make) = *self.inner.store_error.lock() {
            return Err(make());
        }
        self.add_file(path, &buf);
        Ok(())
    }

    fn append(&self, path: &str, data: &dyn Upload) -> Result<()> {
        self.need_parent(path, Op::Append)?;
        let mut buf = self.content(path).unwrap_or_default();
        let before = buf.len();
        data.open()?.read_to_end(&mut buf).map_err(Error::Spool)?;
        // The connection broke halfway: half of the new bytes reached the file.
        if let Some(e) = self.take_fault(&Fault::Call("append-partial", path.to_string())) {
            buf.truncate(before + (buf.len() - before) / 2);
            self.add_file(path, &buf);
            return Err(e);
        }
        self.fault("append", path)?;
        self.add_file(path, &buf);
        Ok(())
    }

    fn store_stream(&self, path: &str) -> Result<Option<Box<dyn UploadStream>>> {
        self.need_parent(path, Op::Store)?;
        self.inner.streams.fetch_add(1, Ordering::SeqCst);
        Ok(Some(Box::new(MemUpload {
            remote: MemRemote {
                inner: Arc::clone(&self.inner),
            },
            path: path.to_string(),
            data: Vec::new(),
        })))
    }

    fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.inner.copies.fetch_add(1, Ordering::SeqCst);
        self.fault("copy", from)?;
        if self.inner.no_copy.load(Ordering::SeqCst) {
            return Err(Error::Unsupported);
        }
        let data = self.content(from).ok_or_else(|| Self::missing(Op::Copy))?;
        self.need_parent(to, Op::Copy)?;
        self.add_file(to, &data);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.fault("rename", from)?;
        if self.inner.refuse_rename_onto.load(Ordering::SeqCst) && self.exists(to) {
            return Err(Error::Reply {
                op: Op::Rename,
                code: 553,
                text: "Rename refused: destination exists".into(),
            });
        }
        self.need_parent(to, Op::Rename)?;
        let mut entries = self.inner.entries.lock();
        let mut data = self.inner.data.lock();
        if !entries.contains_key(from) {
            return Err(Self::missing(Op::Rename));
        }
        let moved: Vec<String> = entries
            .keys()
            .filter(|p| *p == from || p.starts_with(&format!("{from}/")))
            .cloned()
            .collect();
        for old in moved {
            let new = format!("{to}{}", &old[from.len()..]);
            let mut e = entries.remove(&old).expect("listed above");
            e.name = remote::basename(&new).to_string();
            entries.insert(new.clone(), e);
            if let Some(d) = data.remove(&old) {
                data.insert(new, d);
            }
        }
        Ok(())
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.fault("delete", path)?;
        match self.inner.entries.lock().get(path).map(|e| e.kind) {
            Some(Kind::File | Kind::Symlink) => {}
            _ => return Err(Self::missing(Op::Delete)),
        }
        self.remove(path);
        Ok(())
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        self.fault("mkdir", path)?;
        self.need_parent(path, Op::Mkdir)?;
        if self.exists(path) {
            return Err(Self::missing(Op::Mkdir));
        }
        self.add_dir(path);
        Ok(())
    }

    fn rmdir(&self, path: &str) -> Result<()> {
        self.fault("rmdir", path)?;
        let entries = self.inner.entries.lock();
        let has_children = entries
            .keys()
            .any(|p| remote::parent(p) == path && !p.is_empty());
        if entries.get(path).map(|e| e.kind) != Some(Kind::Dir) || has_children {
            return Err(Self::missing(Op::Rmdir));
        }
        drop(entries);
        self.remove(path);
        Ok(())
    }

    fn chmod(&self, path: &str, _kind: Kind, mode: u32) -> Result<()> {
        self.fault("chmod", path)?;
        match self.inner.entries.lock().get_mut(path) {
            Some(e) => {
                e.mode = Some(mode & 0o7777);
                Ok(())
            }
            None => Err(Self::missing(Op::Chmod)),
        }
    }

    fn set_mtime(&self, path: &str, _kind: Kind, mtime: std::time::SystemTime) -> Result<()> {
        self.fault("mtime", path)?;
        match self.inner.entries.lock().get_mut(path) {
            Some(e) => {
                e.mtime = Some(mtime);
                Ok(())
            }
            None => Err(Self::missing(Op::SetTime)),
        }
    }

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
    fn read_at(&self, offset: u64, len: usize) -> Result<remote::Data> {
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
        Ok(remote::Data::shared(data, start, start + n))
    }
}

/// A streamed upload into a [`MemRemote`]: the file appears whole at `finish`, through the
/// same faults as `store`.
struct MemUpload {
    remote: MemRemote,
    path: String,
    data: Vec<u8>,
}

impl UploadStream for MemUpload {
    fn write_all(&mut self, data: &[u8]) -> Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.remote.store(&self.path, &self.data)
    }
}
