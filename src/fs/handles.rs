//! The open-handle table: what the kernel's `fh` numbers stand for.
//!
//! A handle is shared (`Arc`) so that a long read on one handle never holds the table's lock:
//! the lock is taken only to find or insert the handle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::cache::Listing;

pub enum Handle<Rd> {
    /// An open file. `write` handles share the inode's spool (see [`crate::upload`]).
    File {
        reader: Rd,
        ino: u64,
        write: bool,
        /// The process that opened it (see [`crate::fs::FtpFs::flush_from`]).
        owner: u32,
    },
    Dir {
        path: String,
        listing: Arc<Listing>,
    },
}

pub struct Handles<Rd> {
    map: Mutex<HashMap<u64, Arc<Handle<Rd>>>>,
    next: AtomicU64,
}

impl<Rd> Default for Handles<Rd> {
    fn default() -> Self {
        Handles {
            map: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }
}

impl<Rd> Handles<Rd> {
    pub fn insert(&self, h: Handle<Rd>) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        self.map.lock().insert(fh, Arc::new(h));
        fh
    }

    pub fn get(&self, fh: u64) -> Option<Arc<Handle<Rd>>> {
        self.map.lock().get(&fh).cloned()
    }

    /// Removes a handle. Its resources (an open transfer) are released when the last user of
    /// the `Arc` lets go, outside the table's lock.
    pub fn remove(&self, fh: u64) {
        let h = self.map.lock().remove(&fh);
        drop(h);
    }
}
