//! Streaming a big sequential write to the server while it is being written.
//!
//! The spool makes every write pattern work, but on its own it makes a big copy cost twice:
//! first the program writes the whole file into the spool, then `close` waits while the
//! spool goes up with STOR. For the common case, a file written from the start to the end
//! (`cp`, `dd`, `tar x` of a big member, a download saved by a browser), the upload can run
//! *while* the program writes: once such a file reaches [`STREAM_MIN`], a STOR to a
//! temporary name starts, and a thread sends the spool's bytes as they arrive. `close` then
//! only waits for the tail, then renames the temporary file into place.
//!
//! The spool stays the source of truth. Anything that breaks the pattern (a write anywhere
//! but the end, a truncate, an unlink) stops the stream and deletes its temporary file, and
//! a stream that fails for any reason is simply replaced by the ordinary upload of the spool
//! at `close`, with its retries. So streaming can make `close` faster, never less correct.
//! The thread sends the spool file in 1 MiB pieces with `sendfile` (the bytes are still in
//! the page cache; see [`crate::remote::send_file`]), so memory stays flat.

use std::fs::File;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::spool::Spool;
use super::Writes;
use crate::error::{Error, Result};
use crate::remote::{Remote, UploadStream};

/// Files shorter than this go up at `close` in one piece; streaming them would only add a
/// rename.
pub const STREAM_MIN: u64 = 4 * 1024 * 1024;

const CHUNK: u64 = 1024 * 1024;

/// A running streamed upload of a spool.
pub struct Streamer {
    /// The temporary remote path being written.
    pub temp: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The spool holds bytes `[0, ready)`.
    ready: u64,
    /// The whole file is `[0, end)`: send it and finish.
    end: Option<u64>,
    abort: bool,
    /// What the thread ended with.
    result: Option<Result<()>>,
}

impl Streamer {
    /// Starts sending `file` (the spool) into `upload`, which writes `temp` on the server.
    pub fn start(
        upload: Box<dyn UploadStream>,
        file: File,
        temp: String,
        ready: u64,
    ) -> std::io::Result<Streamer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready,
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ftpfs-upload".into())
            .spawn(move || {
                let r = run(&s, upload, &file);
                s.state.lock().result = Some(r);
                s.changed.notify_all();
            })?;
        Ok(Streamer {
            temp,
            shared,
            thread: Some(thread),
        })
    }

    /// The spool now holds `[0, ready)`.
    pub fn advance(&self, ready: u64) {
        self.shared.state.lock().ready = ready;
        self.shared.changed.notify_all();
    }

    /// Sends the rest up to `len`, ends the STOR and returns the server's verdict.
    pub fn finish(mut self, len: u64) -> Result<()> {
        {
            let mut st = self.shared.state.lock();
            st.ready = len;
            st.end = Some(len);
        }
        self.shared.changed.notify_all();
        self.join()
    }

    /// Stops sending; the temporary file is the caller's to delete.
    pub fn abort(mut self) {
        self.shared.state.lock().abort = true;
        self.shared.changed.notify_all();
        let _ = self.join();
    }

    fn join(&mut self) -> Result<()> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared
            .state
            .lock()
            .result
            .take()
            .unwrap_or_else(|| Err(Error::Spool(std::io::Error::other("upload thread died"))))
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shared.state.lock().abort = true;
            self.shared.changed.notify_all();
            let _ = self.join();
        }
    }
}

fn run(s: &Shared, mut upload: Box<dyn UploadStream>, file: &File) -> Result<()> {
    let mut sent = 0u64;
    loop {
        let (ready, end) = {
            let mut st = s.state.lock();
            while !st.abort && st.ready == sent && st.end != Some(sent) {
                s.changed.wait(&mut st);
            }
            if st.abort {
                // Dropping the upload closes its connection; the server keeps a partial
                // temporary file, which the caller deletes.
                return Err(Error::Spool(std::io::Error::other("stream stopped")));
            }
            (st.ready, st.end)
        };
        while sent < ready {
            let n = CHUNK.min(ready - sent);
            upload.write_file(file, sent, n)?;
            sent += n;
        }
        if end == Some(sent) {
            return upload.finish();
        }
    }
}

impl<R: Remote> Writes<'_, R> {
    /// Starts uploading a file that is being written from start to end while it is written,
    /// to a temporary name beside it. Nothing happens if no connection is free or anything
    /// fails: the upload at `close` remains.
    pub(super) fn start_stream(&self, ino: u64, s: &mut Spool) {
        let Some(path) = self.inodes.path(ino) else {
            return;
        };
        let temp = self.temp_name(&path, "part");
        let upload = match self.remote.store_stream(&temp) {
            Ok(Some(u)) => u,
            Ok(None) => {
                log::debug!("{path}: no free connection to stream the upload");
                return;
            }
            Err(e) => {
                log::debug!("{path}: not streaming: {e}");
                return;
            }
        };
        let file = match s.file_clone() {
            Ok(f) => f,
            Err(e) => {
                log::debug!("{path}: not streaming: {e}");
                drop(upload);
                let _ = self.remote.delete(&temp);
                return;
            }
        };
        match Streamer::start(upload, file, temp.clone(), s.len) {
            Ok(st) => {
                log::debug!("{path}: streaming the upload to {temp}");
                s.stream = Some(st);
            }
            Err(e) => {
                log::debug!("{path}: not streaming: {e}");
                let _ = self.remote.delete(&temp);
            }
        }
    }

    /// Ends a streamed upload that is no longer wanted and deletes its temporary file.
    pub(super) fn stop_stream(&self, s: &mut Spool) {
        if let Some(st) = s.stream.take() {
            let temp = st.temp.clone();
            st.abort();
            if let Err(e) = self.remote.delete(&temp) {
                log::warn!("could not delete the abandoned upload {temp}: {e}");
            }
        }
    }

    /// Completes the streamed upload of `s` as the file `path`: the rest of the bytes, the
    /// server's verdict, the rename into place. `false` if any of it failed (logged; the
    /// temporary file is deleted), and the ordinary upload takes over.
    pub(super) fn finish_stream(&self, path: &str, s: &mut Spool) -> bool {
        let Some(st) = s.stream.take() else {
            return false;
        };
        let temp = st.temp.clone();
        if let Err(e) = st.finish(s.len) {
            log::warn!("{path}: streamed upload failed ({e}); uploading the spool");
            let _ = self.remote.delete(&temp);
            return false;
        }
        // put_in_place deletes the temporary file itself when it fails.
        match self.put_in_place(&temp, path, s.len) {
            Ok(()) => true,
            Err(e) => {
                log::warn!(
                    "{path}: streamed upload not renamed into place ({e}); uploading the spool"
                );
                false
            }
        }
    }
}
