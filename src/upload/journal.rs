//! The write-back journal: what `close` promised, kept on local disk until the server has it.
//!
//! With `-o writeback`, `close` returns before the upload. From that moment the data exists
//! only on this machine, and the process may be killed (`kill -9`, the OOM killer), the
//! machine may reboot, or the server may stay down for hours. The journal keeps, for every
//! queued upload, a copy of the data and a record of what it is for: the remote path, the
//! server's state the local version was based on (its size, or "new file"), and the time and
//! mode still to be applied. The next mount of the same server and path ([`dir_for`])
//! replays it *before* it serves anything ([`super::replay`]).
//!
//! Durability: one fsync per `close`. Each record is a file of its own (a text header, the
//! data, and a checksum of both at the end), written into a *slot*: a file made empty
//! ahead of time, in batches whose directory entries are fsync'ed once per batch, and
//! reused once its upload landed. Writing a record then changes no directory, so the
//! `fdatasync` of the slot alone makes it durable. (A file made and renamed per record
//! needed the directory fsync'ed too: two fsyncs, 8 ms per `close` on this project's ext4
//! against 3 for one, which was the whole difference between write-back and rclone on an
//! untar.) A record counts only whole: a slot whose size, header or checksum does not hold
//! is a `close` that never returned (a crash mid-write, possibly over an older record of
//! the slot whose upload had landed), and is left alone, logged. Removing a done record
//! (emptying its slot) is not fsync'ed: a removal lost to a crash replays an upload that
//! landed, which replay recognises (same size and bytes on the server) and drops, so it
//! costs a comparison, never a duplicate. Empty slots are deleted at the end of a session
//! and after a replay; journals of the one-file-per-record layout (`<id>.rec`) are still
//! read.
//!
//! A newer record of a file replaces the older ones (it carries the whole change since the
//! last upload and expects the base the oldest expected); if a crash leaves both, replay
//! uses only the newest.
//!
//! Conflicts: a file whose server size is not the recorded base (changed by someone else
//! since, or removed) is not overwritten: the local version goes to the recovery
//! directory, logged at error level. FTP offers no content hash, and listings' times are
//! often to the minute (and our own uploads' times are the server's), so the size is the
//! base compared; a change that keeps the size is not detected (README, Write-back).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

pub use super::replay::Replayed;

/// What the server had when the local version was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Nothing: the file was created here and never uploaded.
    New,
    /// A file of this many bytes.
    Size(u64),
}

/// One queued upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Order of the records; names its files.
    pub id: u64,
    /// The remote path, below the mount's root.
    pub path: String,
    pub base: Base,
    /// The data is what follows the base's bytes (an `APPE`), not the whole file.
    pub tail: bool,
    /// Bytes of data.
    pub len: u64,
    /// The process that wrote it: names its temporary files on the server.
    pub pid: u32,
    /// A time set before `close`, applied after the upload.
    pub mtime: Option<SystemTime>,
    /// The mode its creator asked for, applied after the first upload.
    pub mode: Option<u32>,
    /// Where the data starts in the record's file, after the header.
    pub offset: u64,
    /// A queued `mkdir` (write-back, see [`super::mkdir`]): no data, `mode` is the one
    /// asked for; replayed before every record beneath its path.
    pub dir: bool,
}

impl Record {
    fn to_text(&self) -> String {
        let mut t = format!("ftpfs-journal 2\nid {}\npid {}\n", self.id, self.pid);
        match self.base {
            Base::New => t.push_str("base new\n"),
            Base::Size(n) => t.push_str(&format!("base {n}\n")),
        }
        t.push_str(&format!("tail {}\nlen {}\n", u8::from(self.tail), self.len));
        if let Some(m) = self.mtime {
            let d = m.duration_since(UNIX_EPOCH).unwrap_or_default();
            t.push_str(&format!("mtime {} {}\n", d.as_secs(), d.subsec_nanos()));
        }
        if let Some(m) = self.mode {
            t.push_str(&format!("mode {m:o}\n"));
        }
        if self.dir {
            t.push_str("kind dir\n");
        }
        // Last, and to the end of its line: a path holds no line end (remote::valid_name).
        // An empty line ends the header; the data follows.
        t.push_str(&format!("path {}\n\n", self.path));
        t
    }

    /// The header at the start of a record's file.
    fn parse(id: u64, head: &[u8]) -> Option<Record> {
        let end = head.windows(2).position(|w| w == b"\n\n")?;
        let text = std::str::from_utf8(&head[..end]).ok()?;
        let mut lines = text.lines();
        // 1: a file per record, named by its id; 2: a slot, the id in the header.
        let version = lines.next()?;
        if version != "ftpfs-journal 1" && version != "ftpfs-journal 2" {
            return None;
        }
        let mut rec = Record {
            id,
            path: String::new(),
            base: Base::New,
            tail: false,
            len: 0,
            pid: 0,
            mtime: None,
            mode: None,
            offset: end as u64 + 2,
            dir: false,
        };
        let mut has_path = false;
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            match key {
                "id" => rec.id = value.parse().ok()?,
                "pid" => rec.pid = value.parse().ok()?,
                "base" if value == "new" => rec.base = Base::New,
                "base" => rec.base = Base::Size(value.parse().ok()?),
                "tail" => rec.tail = value == "1",
                "len" => rec.len = value.parse().ok()?,
                "mtime" => {
                    let (s, n) = value.split_once(' ')?;
                    let d = Duration::new(s.parse().ok()?, n.parse().ok()?);
                    rec.mtime = Some(UNIX_EPOCH + d);
                }
                "mode" => rec.mode = Some(u32::from_str_radix(value, 8).ok()?),
                "kind" if value == "dir" => rec.dir = true,
                "path" => {
                    rec.path = value.to_string();
                    has_path = true;
                }
                _ => return None,
            }
        }
        let dir_ok = !rec.dir || (rec.len == 0 && !rec.tail);
        (has_path && dir_ok && !(rec.tail && rec.base == Base::New)).then_some(rec)
    }
}

/// The journal directory of one server and path inside `spool_dir`: a readable part and a
/// hash of `key` (`user@host:port/path`), so two mounts of different servers or
/// directories never replay each other's uploads.
pub fn dir_for(spool_dir: &Path, key: &str) -> PathBuf {
    let readable: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    // FNV-1a: stable across builds and Rust versions, unlike the standard hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    spool_dir
        .join("journal")
        .join(format!("{readable}-{hash:016x}"))
}

/// The journal of one mount.
pub struct Journal {
    dir: PathBuf,
    next: AtomicU64,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    /// Empty slots, ready for a record.
    free: Vec<PathBuf>,
    /// The file of each record: a slot, or an `<id>.rec` of the older layout.
    of: HashMap<u64, PathBuf>,
    /// Names the next batch of slots.
    next_slot: u64,
}

/// Slots made at once, their directory entries fsync'ed together.
const SLOT_BATCH: usize = 16;
/// The end of a record: `sum `, 16 hex digits of the checksum, a line end.
const TRAILER_LEN: u64 = 21;

/// FNV-1a, continued from `h`: stable across builds, and enough to tell a torn write from
/// a whole one (nobody forges a journal that only its owner can write).
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// What the journal's directory holds.
#[derive(Default)]
struct Scan {
    records: Vec<(Record, PathBuf)>,
    free: Vec<PathBuf>,
    last_id: u64,
    last_slot: u64,
}

impl Journal {
    /// Opens (or makes, 0700) the journal in `dir`. A temporary file of the older layout
    /// belongs to a `close` that never returned: it is dropped.
    pub fn open(dir: PathBuf) -> io::Result<Journal> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let scan = scan(&dir)?;
        let of = scan
            .records
            .iter()
            .map(|(r, p)| (r.id, p.clone()))
            .collect();
        Ok(Journal {
            dir,
            next: AtomicU64::new(scan.last_id + 1),
            slots: Mutex::new(Slots {
                free: scan.free,
                of,
                next_slot: scan.last_slot + 1,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of record `id`: its header, then its data (from [`Record::offset`]).
    pub fn file_path(&self, id: u64) -> PathBuf {
        self.slots
            .lock()
            .of
            .get(&id)
            .cloned()
            .unwrap_or_else(|| self.dir.join(format!("{id:020}.rec")))
    }

    /// Whether record `id` is in the journal.
    pub fn holds(&self, id: u64) -> bool {
        self.slots.lock().of.contains_key(&id)
    }

    /// An empty slot; a batch of new ones, made durable with one fsync of the directory,
    /// when none is free.
    fn take_slot(&self) -> io::Result<PathBuf> {
        let mut slots = self.slots.lock();
        if let Some(p) = slots.free.pop() {
            return Ok(p);
        }
        let first = slots.next_slot;
        let mut made = Vec::with_capacity(SLOT_BATCH);
        for n in first..first + SLOT_BATCH as u64 {
            let path = self.dir.join(format!("{n:08}.slot"));
            match new_private(&path) {
                Ok(_) => made.push(path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if made.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        slots.next_slot = first + SLOT_BATCH as u64;
        File::open(&self.dir)?.sync_all()?;
        let p = made
            .pop()
            .ok_or_else(|| io::Error::other("no journal slot"))?;
        slots.free.extend(made);
        Ok(p)
    }

    /// Writes `rec` and `len` bytes from `data` durably (see the module's doc); returns the
    /// record with its id and offset.
    pub fn write(&self, mut rec: Record, data: &mut dyn Read) -> io::Result<Record> {
        rec.id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = self.take_slot()?;
        let head = rec.to_text();
        rec.offset = head.len() as u64;
        let written = (|| {
            let mut f = OpenOptions::new().write(true).open(&slot)?;
            f.write_all(head.as_bytes())?;
            let mut sum = fnv(FNV_START, head.as_bytes());
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = rec.len;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = data.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::other(format!(
                        "the spool gave {} bytes, {} expected",
                        rec.len - left,
                        rec.len
                    )));
                }
                sum = fnv(sum, &buf[..n]);
                f.write_all(&buf[..n])?;
                left -= n as u64;
            }
            f.write_all(format!("sum {sum:016x}\n").as_bytes())?;
            // Shorter than an older record of the slot, perhaps.
            f.set_len(rec.offset + rec.len + TRAILER_LEN)?;
            f.sync_data()
        })();
        match written {
            Ok(()) => {
                self.slots.lock().of.insert(rec.id, slot);
                Ok(rec)
            }
            Err(e) => {
                self.free_slot(slot);
                Err(e)
            }
        }
    }

    /// Empties `slot` for the next record (not fsync'ed: see the module's doc).
    fn free_slot(&self, slot: PathBuf) {
        let emptied = OpenOptions::new()
            .write(true)
            .open(&slot)
            .and_then(|f| f.set_len(0));
        if emptied.is_ok() {
            self.slots.lock().free.push(slot);
        }
    }

    /// The upload of record `id` landed (or its data is kept elsewhere now).
    pub fn remove(&self, id: u64) {
        let Some(path) = self.slots.lock().of.remove(&id) else {
            return;
        };
        if path.extension().is_some_and(|e| e == "slot") {
            self.free_slot(path);
        } else {
            let _ = fs::remove_file(path);
        }
    }

    /// Deletes the empty slots (at the end of a session, and after a replay).
    pub fn tidy(&self) {
        let free = std::mem::take(&mut self.slots.lock().free);
        for p in free {
            let _ = fs::remove_file(p);
        }
    }

    /// Every record, oldest first. One that cannot be read is logged and left alone.
    pub fn records(&self) -> io::Result<Vec<Record>> {
        let scan = scan(&self.dir)?;
        let mut slots = self.slots.lock();
        let mut out = Vec::new();
        for (r, p) in scan.records {
            slots.of.insert(r.id, p);
            out.push(r);
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }
}

/// Reads the journal's directory: the whole records, the empty slots, the highest id and
/// slot number. A temporary file of the older layout is dropped.
fn scan(dir: &Path) -> io::Result<Scan> {
    let mut out = Scan::default();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let Some((n, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue;
        };
        match ext {
            "tmp" => {
                out.last_id = out.last_id.max(n);
                log::debug!("journal: dropping {name} (its close never returned)");
                let _ = fs::remove_file(&path);
                continue;
            }
            "rec" => out.last_id = out.last_id.max(n),
            "slot" => out.last_slot = out.last_slot.max(n),
            _ => continue,
        }
        let slot = ext == "slot";
        let mut seen = 0;
        let mut read = || -> io::Result<Option<Record>> {
            let f = File::open(&path)?;
            let size = f.metadata()?.len();
            if slot && size == 0 {
                return Ok(None);
            }
            // A header is a few short lines and a path of at most a few KiB.
            let mut head = vec![0u8; 16 * 1024];
            let got = f.read_at(&mut head, 0)?;
            head.truncate(got);
            let id = if slot { 0 } else { n };
            let Some(r) = Record::parse(id, &head) else {
                return Err(io::Error::other("no header"));
            };
            // Even a record that is not whole took its id.
            seen = seen.max(r.id);
            if !slot {
                return Ok((r.offset + r.len == size).then_some(r));
            }
            Ok(whole(&f, &r, size)?.then_some(r))
        };
        let got = read();
        out.last_id = out.last_id.max(seen);
        match got {
            Ok(None) if slot => out.free.push(path),
            Ok(Some(r)) => {
                out.last_id = out.last_id.max(r.id);
                out.records.push((r, path));
            }
            _ => log::error!("journal: cannot read {}; left as it is", path.display()),
        }
    }
    Ok(out)
}

/// Whether the slot `f` of `size` bytes holds `r` whole: its size, then the checksum.
fn whole(f: &File, r: &Record, size: u64) -> io::Result<bool> {
    let end = r.offset + r.len;
    if r.id == 0 || end + TRAILER_LEN != size {
        return Ok(false);
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut sum = FNV_START;
    let mut at = 0u64;
    while at < end {
        let n = buf
            .len()
            .min(usize::try_from(end - at).unwrap_or(usize::MAX));
        f.read_exact_at(&mut buf[..n], at)?;
        sum = fnv(sum, &buf[..n]);
        at += n as u64;
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    f.read_exact_at(&mut trailer, end)?;
    Ok(trailer[..] == *format!("sum {sum:016x}\n").as_bytes())
}

fn new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, base: Base, tail: bool, len: u64) -> Record {
        Record {
            id: 0,
            path: path.into(),
            base,
            tail,
            len,
            pid: 42,
            mtime: Some(UNIX_EPOCH + Duration::new(1_500_000_000, 7)),
            mode: Some(0o600),
            offset: 0,
            dir: false,
        }
    }

    fn data_of(j: &Journal, r: &Record) -> Vec<u8> {
        let all = std::fs::read(j.file_path(r.id)).unwrap();
        all[r.offset as usize..(r.offset + r.len) as usize].to_vec()
    }

    #[test]
    fn a_record_survives_reopening_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j")).unwrap();
        let a = j
            .write(
                record("/a b/c.txt", Base::New, false, 5),
                &mut &b"hello"[..],
            )
            .unwrap();
        let b = j
            .write(record("/log", Base::Size(10), true, 3), &mut &b"abc"[..])
            .unwrap();
        drop(j);
        let j = Journal::open(dir.path().join("j")).unwrap();
        assert_eq!(j.records().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(data_of(&j, &a), b"hello");
        // Ids go on after the highest one found.
        let c = j
            .write(record("/x", Base::Size(0), false, 0), &mut &b""[..])
            .unwrap();
        assert!(c.id > b.id);
        let a_slot = j.file_path(a.id);
        j.remove(a.id);
        assert_eq!(j.records().unwrap().len(), 2);
        assert!(!j.holds(a.id));
        // Its slot is reused, and a record of the older layout is still read.
        let d = j
            .write(record("/y", Base::New, false, 2), &mut &b"yy"[..])
            .unwrap();
        assert_eq!(j.file_path(d.id), a_slot, "the emptied slot is reused");
        let old = j.dir().join(format!("{:020}.rec", 100));
        let mut v1 = record("/old", Base::New, false, 2);
        v1.id = 100;
        let head = v1
            .to_text()
            .replace("ftpfs-journal 2\nid 100\n", "ftpfs-journal 1\n");
        std::fs::write(&old, [head.as_bytes(), b"zz"].concat()).unwrap();
        let paths: Vec<_> = j.records().unwrap().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/log", "/x", "/y", "/old"]);
        j.remove(100);
        assert!(!old.exists());
    }

    #[test]
    fn a_temporary_file_of_the_older_layout_is_a_close_that_never_returned_and_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j")).unwrap();
        let tmp = j.dir().join(format!("{:020}.tmp", 7));
        std::fs::write(&tmp, b"ftpfs-journal 1\npid 1\n").unwrap();
        drop(j);
        let j = Journal::open(dir.path().join("j")).unwrap();
        assert!(!tmp.exists());
        assert!(j.records().unwrap().is_empty());
    }

    /// A crash while a slot is written leaves it cut, or with bytes of the record before it:
    /// either way the record is not whole and is not replayed.
    #[test]
    fn a_record_cut_or_mixed_with_an_older_one_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j")).unwrap();
        let a = j
            .write(record("/a", Base::New, false, 5), &mut &b"hello"[..])
            .unwrap();
        let b = j
            .write(record("/b", Base::New, false, 5), &mut &b"world"[..])
            .unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(j.file_path(a.id))
            .unwrap();
        f.set_len(a.offset + 2).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(j.file_path(b.id))
            .unwrap();
        f.write_all_at(b"W", b.offset).unwrap();
        assert!(j.records().unwrap().is_empty());
        assert!(j.file_path(a.id).exists(), "left alone, for a human");
        drop(j);
        let j = Journal::open(dir.path().join("j")).unwrap();
        let c = j
            .write(record("/c", Base::New, false, 1), &mut &b"c"[..])
            .unwrap();
        assert!(c.id > b.id);
        assert_eq!(j.records().unwrap(), vec![c]);
    }

    #[test]
    fn short_data_is_refused_and_leaves_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j")).unwrap();
        let r = j.write(record("/a", Base::New, false, 10), &mut &b"short"[..]);
        assert!(r.is_err());
        assert!(j.records().unwrap().is_empty());
        j.tidy();
        assert_eq!(std::fs::read_dir(j.dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_queued_mkdir_record_survives_reopening_as_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j")).unwrap();
        let mut rec = record("/a/new dir", Base::New, false, 0);
        rec.dir = true;
        rec.mtime = None;
        rec.mode = Some(0o750);
        let d = j.write(rec, &mut std::io::empty()).unwrap();
        let f = j
            .write(record("/a/new dir/f", Base::New, false, 1), &mut &b"f"[..])
            .unwrap();
        drop(j);
        let j = Journal::open(dir.path().join("j")).unwrap();
        let back = j.records().unwrap();
        assert_eq!(back, vec![d.clone(), f]);
        assert!(back[0].dir && !back[1].dir);
        assert_eq!(back[0].mode, Some(0o750));
        // A directory record with data is not one this code writes: not replayed.
        let bad = d.to_text().replace("len 0", "len 1");
        assert!(Record::parse(0, format!("{bad}x").as_bytes()).is_none());
    }

    #[test]
    fn journal_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path().join("j")).unwrap();
        let a = j
            .write(record("/a", Base::New, false, 1), &mut &b"x"[..])
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(j.dir()), 0o700);
        assert_eq!(mode(&j.file_path(a.id)), 0o600);
    }

    #[test]
    fn each_server_and_path_has_its_own_journal() {
        let d = Path::new("/s");
        let a = dir_for(d, "alice@h:21/x");
        assert_eq!(a, dir_for(d, "alice@h:21/x"));
        assert_ne!(a, dir_for(d, "alice@h:21/y"));
        assert_ne!(a, dir_for(d, "alice@h:2121/x"));
        assert!(a.starts_with("/s/journal"));
    }
}
