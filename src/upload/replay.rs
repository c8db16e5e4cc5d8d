//! Replaying the write-back journal ([`super::journal`]) at mount: finishing the uploads an
//! earlier session promised (`close` returned) but did not finish, before the mount serves
//! anything, without duplicates or temporary files, and without overwriting a file someone
//! changed on the server meanwhile (see the journal's doc for conflicts).
//!
//! Queued `mkdir`s ([`super::mkdir`]) are replayed first, parents before children, so every
//! file beneath one finds its directory; a directory the server refuses leaves the files
//! beneath it without one, and they go to the recovery directory as conflicts.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::journal::{Base, Journal, Record};
use super::spool::Spool;
use super::{UploadMode, Writes};
use crate::error::{Error, Result};
use crate::remote::{self, Kind, Remote};

/// What replaying the journal did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub uploaded: usize,
    /// Already on the server (the upload landed before the crash).
    pub found: usize,
    /// Changed on the server: the local version went to the recovery directory.
    pub conflicts: usize,
    /// Could not be finished now; kept for the next mount.
    pub kept: usize,
}

enum Outcome {
    Uploaded,
    Found,
    Conflict(String),
}

impl<R: Remote> Writes<'_, R> {
    /// Finishes the uploads a previous session of this server and path left in `journal`,
    /// oldest first, before the mount serves anything (so nothing of this session can race
    /// with them). See the module's doc for conflicts.
    pub fn replay(&self, journal: &Journal) -> Replayed {
        let mut done = Replayed::default();
        let records = match journal.records() {
            Ok(r) => replay_order(r),
            Err(e) => {
                log::error!("journal {}: cannot read it: {e}", journal.dir().display());
                return done;
            }
        };
        if records.is_empty() {
            journal.tidy();
            return done;
        }
        log::info!(
            "journal: {} upload(s) left by an earlier session; finishing them",
            records.len()
        );
        let newest: HashMap<&str, u64> = records
            .iter()
            .filter(|r| !r.dir)
            .map(|r| (r.path.as_str(), r.id))
            .collect();
        let mut swept = HashSet::new();
        // Directories whose queued `mkdir` the server refused: path, its answer.
        let mut refused: Vec<(String, String)> = Vec::new();
        for rec in &records {
            if rec.dir {
                if let Some(why) = self.replay_dir(journal, rec, &mut done) {
                    refused.push((rec.path.clone(), why));
                }
                continue;
            }
            if newest.get(rec.path.as_str()) != Some(&rec.id) {
                journal.remove(rec.id);
                continue;
            }
            let dir = remote::parent(&rec.path).to_string();
            if swept.insert((dir.clone(), rec.pid)) {
                self.sweep_temp_files(&dir, rec.pid);
            }
            let beneath = refused
                .iter()
                .find(|(d, _)| rec.path.starts_with(&format!("{d}/")));
            let outcome = match beneath {
                Some((d, why)) => Ok(Outcome::Conflict(format!(
                    "its directory {d} could not be made ({why})"
                ))),
                None => self.replay_one(journal, rec),
            };
            match outcome {
                Ok(Outcome::Uploaded) => {
                    done.uploaded += 1;
                    journal.remove(rec.id);
                }
                Ok(Outcome::Found) => {
                    log::info!("{}: its upload had landed already", rec.path);
                    done.found += 1;
                    journal.remove(rec.id);
                }
                Ok(Outcome::Conflict(why)) => {
                    done.conflicts += 1;
                    match self.recover_record(journal, rec) {
                        Ok(p) => {
                            log::error!(
                                "{}: not uploaded: {why}; the local version was saved to {}",
                                rec.path,
                                p.display()
                            );
                            journal.remove(rec.id);
                        }
                        Err(e) => log::error!(
                            "{}: not uploaded: {why}; it stays in the journal ({}): {e}",
                            rec.path,
                            journal.file_path(rec.id).display()
                        ),
                    }
                }
                Err(e) => {
                    done.kept += 1;
                    log::error!(
                        "{}: the queued upload failed again ({e}); kept in {} for the next mount",
                        rec.path,
                        journal.file_path(rec.id).display()
                    );
                }
            }
        }
        journal.tidy();
        log::info!("journal replayed: {done:?}");
        done
    }

    /// Makes a directory whose `mkdir` was queued: done if the server makes it or has it,
    /// kept for the next mount if it cannot be reached, else dropped (logged at error
    /// level, and returned: what was queued beneath it goes to recovery).
    fn replay_dir(&self, journal: &Journal, rec: &Record, done: &mut Replayed) -> Option<String> {
        let name = remote::basename(&rec.path);
        let made = self.remote.mkdir(&rec.path).map(|()| true).or_else(|e| {
            self.cache.invalidate(remote::parent(&rec.path));
            match self.listing(remote::parent(&rec.path)) {
                Ok(l) if l.get(name).is_some_and(|x| x.kind == Kind::Dir) => Ok(false),
                Err(le) if super::writeback::unreachable(&le) => Err(le),
                _ => Err(e),
            }
        });
        self.cache.invalidate(remote::parent(&rec.path));
        match made {
            Ok(fresh) => {
                if fresh {
                    if let Some(mode) = rec.mode {
                        self.apply_new_mode(&rec.path, Kind::Dir, mode);
                    }
                    done.uploaded += 1;
                } else {
                    done.found += 1;
                }
                journal.remove(rec.id);
                None
            }
            Err(e) if super::writeback::unreachable(&e) => {
                done.kept += 1;
                log::error!(
                    "{}: the queued mkdir failed again ({e}); kept in {} for the next mount",
                    rec.path,
                    journal.file_path(rec.id).display()
                );
                None
            }
            Err(e) => {
                done.conflicts += 1;
                log::error!(
                    "{}: the queued mkdir was refused ({e}); what was queued beneath it goes \
                     to the recovery directory",
                    rec.path
                );
                journal.remove(rec.id);
                Some(e.to_string())
            }
        }
    }

    /// Deletes the temporary files the process `pid` may have left in `dir` when it died
    /// mid-upload (see [`Writes::temp_name`]).
    fn sweep_temp_files(&self, dir: &str, pid: u32) {
        self.cache.invalidate(dir);
        let Ok(listing) = self.listing(dir) else {
            return;
        };
        let mark = format!(".{pid}-");
        for e in &listing.entries {
            let ours = e.name.starts_with(".ftpfs-")
                && e.name.ends_with(".part")
                && e.name.contains(&mark);
            if ours && e.kind == Kind::File {
                let path = remote::join(dir, &e.name);
                match self.remote.delete(&path) {
                    Ok(()) => log::info!("{path}: removed, left by an interrupted upload"),
                    Err(err) => log::warn!("{path}: left by an interrupted upload: {err}"),
                }
            }
        }
        self.cache.invalidate(dir);
    }

    fn replay_one(&self, journal: &Journal, rec: &Record) -> Result<Outcome> {
        // Listed fresh once per directory (by the sweep before it), not once per file: the
        // uploads of this replay change only their own names.
        let dir = remote::parent(&rec.path);
        let listing = match self.listing(dir) {
            Ok(l) => l,
            Err(Error::NotFound) => {
                return Ok(Outcome::Conflict("its directory is gone".into()));
            }
            Err(e) => return Err(e),
        };
        let server = listing.get(remote::basename(&rec.path));
        if server.is_some_and(|e| e.kind != Kind::File) {
            return Ok(Outcome::Conflict(
                "it is not a file on the server any more".into(),
            ));
        }
        let size = server.map(|e| e.size);
        let data = Data::open(journal, rec).map_err(Error::Spool)?;
        let (start, expected) = match rec.base {
            Base::New => (0, None),
            Base::Size(n) => (if rec.tail { n } else { 0 }, Some(n)),
        };
        let base_holds = match (expected, size) {
            (None, None) => true,
            (Some(n), Some(s)) => n == s,
            _ => false,
        };
        // A new or empty file goes up in place (nothing to lose), and an append is an APPE:
        // a crash can leave a cut copy of our own upload, which is finished, not a conflict.
        let in_place = !rec.tail && matches!(rec.base, Base::New | Base::Size(0));
        let mut resume = start;
        if !base_holds {
            // Our own upload may have landed before the crash took its record away.
            let landed = size == Some(start + rec.len)
                && self.server_has(&rec.path, start, rec.len, &data)?;
            if landed {
                return Ok(Outcome::Found);
            }
            let cut = size.filter(|&s| s < start + rec.len && (s > start || in_place));
            match cut {
                Some(s) if self.server_has(&rec.path, start, s - start, &data)? => resume = s,
                _ => {
                    let was = match expected {
                        None => "none".to_string(),
                        Some(n) => format!("{n} bytes"),
                    };
                    let now = size.map_or("none".to_string(), |s| format!("{s} bytes"));
                    return Ok(Outcome::Conflict(format!(
                        "changed on the server since it was queued (the local version was \
                         based on {was}, the server has {now})"
                    )));
                }
            }
        }
        if rec.tail {
            let mut spool = Spool::new(&self.up.spool_dir, resume)?;
            copy_into(
                &data,
                &mut spool,
                resume - start,
                resume,
                rec.len - (resume - start),
            )?;
            match self.remote.append(&rec.path, &spool.upload_from(resume)) {
                // A server that does not append (proftpd by default): the server's first
                // bytes are what the record expects (checked above), so the whole file
                // goes up, atomically, as a live upload would.
                Err(Error::Unsupported) => {
                    let path = rec.path.clone();
                    spool.fill(|| {
                        let r = self.remote.open_reader(&path, resume)?;
                        Ok(Box::new(r) as Box<dyn super::spool::RemoteReaderDyn>)
                    })?;
                    self.replace_atomically(&rec.path, &spool)?;
                }
                other => other?,
            }
        } else {
            let mut spool = Spool::new(&self.up.spool_dir, 0)?;
            copy_into(&data, &mut spool, 0, 0, rec.len)?;
            if in_place || self.up.mode == UploadMode::InPlace {
                self.remote.store(&rec.path, &spool.upload_from(0))?;
            } else {
                self.replace_atomically(&rec.path, &spool)?;
            }
        }
        if let Some(mode) = rec.mode {
            self.apply_new_mode(&rec.path, Kind::File, mode);
        }
        if let Some(t) = rec.mtime {
            if let Err(e) = self.remote.set_mtime(&rec.path, Kind::File, t) {
                log::warn!("{}: uploaded, but setting its time failed: {e}", rec.path);
            }
        }
        Ok(Outcome::Uploaded)
    }

    /// Whether the server's `path` holds the `len` bytes of `data` from `start` on.
    fn server_has(&self, path: &str, start: u64, len: u64, data: &Data) -> Result<bool> {
        const CHUNK: usize = 1024 * 1024;
        let reader = self.remote.open_reader(path, start + len)?;
        let mut off = 0u64;
        let mut mine = vec![0u8; CHUNK];
        while off < len {
            let want = CHUNK.min((len - off) as usize);
            let theirs = crate::remote::RemoteReader::read_at(&reader, start + off, want)?;
            if theirs.is_empty() {
                return Ok(false);
            }
            let n = theirs.len();
            data.read_exact_at(&mut mine[..n], off)
                .map_err(Error::Spool)?;
            if theirs[..] != mine[..n] {
                return Ok(false);
            }
            off += n as u64;
        }
        Ok(true)
    }

    /// Copies the data of `rec` to the recovery directory: the whole local version, or the
    /// appended tail as `<name>.appended`.
    fn recover_record(&self, journal: &Journal, rec: &Record) -> io::Result<PathBuf> {
        let data = Data::open(journal, rec)?;
        let mut spool = Spool::new(&self.up.spool_dir, 0).map_err(io::Error::other)?;
        copy_into(&data, &mut spool, 0, 0, rec.len).map_err(io::Error::other)?;
        let name = if rec.tail {
            format!("{}.appended", rec.path)
        } else {
            rec.path.clone()
        };
        spool.recover(&self.up.recovery_dir, &name)
    }
}

/// The order records are replayed in: queued `mkdir`s first, parents before children (and
/// in the order they were made), then files, oldest first.
fn replay_order(mut records: Vec<Record>) -> Vec<Record> {
    records.sort_by_key(|r| {
        (
            !r.dir,
            if r.dir {
                r.path.matches('/').count()
            } else {
                0
            },
            r.id,
        )
    });
    records
}

/// A record's data in its file.
struct Data {
    file: File,
    offset: u64,
}

impl Data {
    fn open(journal: &Journal, rec: &Record) -> io::Result<Data> {
        Ok(Data {
            file: File::open(journal.file_path(rec.id))?,
            offset: rec.offset,
        })
    }

    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, self.offset + at)
    }
}

/// `len` bytes of `data` from `from` into `spool` at `at`.
fn copy_into(data: &Data, spool: &mut Spool, from: u64, at: u64, len: u64) -> Result<()> {
    let mut buf = vec![0u8; 1024 * 1024];
    let mut off = 0u64;
    while off < len {
        let n = buf.len().min((len - off) as usize);
        data.read_exact_at(&mut buf[..n], from + off)
            .map_err(Error::Spool)?;
        spool.write_at(at + off, &buf[..n])?;
        off += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, path: &str, dir: bool) -> Record {
        Record {
            id,
            path: path.into(),
            base: Base::New,
            tail: false,
            len: 0,
            pid: 1,
            mtime: None,
            mode: None,
            offset: 0,
            dir,
        }
    }

    #[test]
    fn queued_mkdirs_replay_before_files_and_parents_before_children() {
        // A crash can leave a child's record older than its parent's only if ids were
        // reordered, but the order must not depend on it.
        let order = replay_order(vec![
            rec(1, "a/f", false),
            rec(2, "a/b/c", true),
            rec(3, "a", true),
            rec(4, "a/b/c/g", false),
            rec(5, "a/b", true),
            rec(6, "x", true),
        ]);
        let paths: Vec<&str> = order.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["a", "x", "a/b", "a/b/c", "a/f", "a/b/c/g"]);
    }
}
