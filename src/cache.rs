//! The directory listing cache.
//!
//! One `MLSD` or `LIST` answers every `stat` in a directory, so listings are the unit of
//! caching: a `lookup` or `getattr` of a name in a directory listed less than `ttl` ago costs
//! no FTP command, and neither does a lookup of a name that is *not* in it (negative caching
//! for free). Listings expire after `ttl` (`-o dir_cache_ttl`), are evicted least recently
//! used first once the cache holds more than `max_entries` entries in all (memory stays
//! bounded whatever the tree), and are dropped by [`DirCache::invalidate`] after our own
//! changes.
//!
//! A listing fetched before an invalidation must not be stored after it (it may predate the
//! change): [`DirCache::token`] is taken before fetching and [`DirCache::insert`] refuses a
//! listing whose token is older than the last invalidation.
//!
//! Concurrent misses on one directory are coalesced: the first fetches, the others wait on
//! that directory's fetch lock and then find the result in the cache (`ls -l` sends many
//! lookups in parallel; they cost one listing).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;

use crate::remote::RemoteEntry;

/// A directory's entries, sorted by name (found by binary search, so one entry can be
/// replaced, added or removed in place).
#[derive(Clone, Debug)]
pub struct Listing {
    pub entries: Vec<RemoteEntry>,
    fetched: Instant,
}

impl Listing {
    pub fn new(mut entries: Vec<RemoteEntry>) -> Listing {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        Listing {
            entries,
            fetched: Instant::now(),
        }
    }

    fn position(&self, name: &str) -> std::result::Result<usize, usize> {
        self.entries.binary_search_by(|e| e.name.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&RemoteEntry> {
        self.position(name).ok().map(|i| &self.entries[i])
    }

    /// Puts `entry` in place of `name`'s entry, or removes it; returns the change in length.
    fn set(&mut self, name: &str, entry: Option<RemoteEntry>) -> isize {
        match (self.position(name), entry) {
            (Ok(i), Some(e)) => {
                self.entries[i] = e;
                0
            }
            (Ok(i), None) => {
                self.entries.remove(i);
                -1
            }
            (Err(i), Some(e)) => {
                self.entries.insert(i, e);
                1
            }
            (Err(_), None) => 0,
        }
    }
}

pub struct DirCache {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
    fetching: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

struct Inner {
    lru: LruCache<String, Arc<Listing>>,
    total: usize,
    invalidations: u64,
}

/// Taken before a fetch; see [`DirCache::insert`].
#[derive(Clone, Copy, Debug)]
pub struct Token(u64);

impl DirCache {
    pub fn new(ttl: Duration, max_entries: usize) -> DirCache {
        DirCache {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                total: 0,
                invalidations: 0,
            }),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh listing of `dir`, if cached.
    pub fn get(&self, dir: &str) -> Option<Arc<Listing>> {
        let mut inner = self.inner.lock();
        let found = match inner.lru.get(dir) {
            Some(l) if l.fetched.elapsed() < self.ttl => Some(Arc::clone(l)),
            Some(_) => {
                if let Some(old) = inner.lru.pop(dir) {
                    inner.total -= old.entries.len();
                }
                None
            }
            None => None,
        };
        crate::status::stats().cache(found.is_some());
        found
    }

    pub fn token(&self) -> Token {
        Token(self.inner.lock().invalidations)
    }

    /// Stores a listing fetched under `token`, unless an invalidation happened since.
    /// Returns the listing either way, for the caller to use.
    pub fn insert(&self, dir: &str, listing: Listing, token: Token) -> Arc<Listing> {
        let listing = Arc::new(listing);
        if self.ttl.is_zero() {
            return listing;
        }
        let mut inner = self.inner.lock();
        if inner.invalidations != token.0 {
            return listing;
        }
        inner.total += listing.entries.len();
        if let Some(old) = inner.lru.put(dir.to_string(), Arc::clone(&listing)) {
            inner.total -= old.entries.len();
        }
        while inner.total > self.max_entries && inner.lru.len() > 1 {
            match inner.lru.pop_lru() {
                Some((_, old)) => inner.total -= old.entries.len(),
                None => break,
            }
        }
        listing
    }

    /// The entry of `path` in its directory's cached listing, if that is cached.
    pub fn entry(&self, path: &str) -> Option<RemoteEntry> {
        self.get(crate::remote::parent(path))
            .and_then(|l| l.get(crate::remote::basename(path)).cloned())
    }

    /// Applies one of our own changes to `dir`'s cached listing (if it is cached): `entry`
    /// replaces the entry of its name, or, with `None`, `name` is removed. Cheaper than
    /// invalidating: creating 500 files in a directory must not cost 500 listings. Fetches
    /// that began before the change are refused as after an invalidation.
    pub fn update(&self, dir: &str, name: &str, entry: Option<RemoteEntry>) {
        let mut inner = self.inner.lock();
        inner.invalidations += 1;
        let Some(listing) = inner.lru.peek_mut(dir) else {
            return;
        };
        // Copies only if an open directory handle still holds this version.
        let delta = Arc::make_mut(listing).set(name, entry);
        inner.total = inner.total.saturating_add_signed(delta);
    }

    /// Forgets the listings of `dir` and everything below it (after a directory rename).
    pub fn invalidate_tree(&self, dir: &str) {
        let mut inner = self.inner.lock();
        inner.invalidations += 1;
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = inner
            .lru
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k == dir || k.starts_with(&prefix))
            .collect();
        for k in doomed {
            if let Some(old) = inner.lru.pop(&k) {
                inner.total -= old.entries.len();
            }
        }
    }

    /// Forgets `dir`'s listing (after a change in it).
    pub fn invalidate(&self, dir: &str) {
        let mut inner = self.inner.lock();
        inner.invalidations += 1;
        if let Some(old) = inner.lru.pop(dir) {
            inner.total -= old.entries.len();
        }
    }

    /// The lock serializing fetches of `dir`. Held across the fetch on purpose: it is per
    /// directory, and whoever waits on it wants exactly the result of that fetch.
    pub fn fetch_lock(&self, dir: &str) -> Arc<Mutex<()>> {
        let mut f = self.fetching.lock();
        f.retain(|_, m| Arc::strong_count(m) > 1);
        Arc::clone(f.entry(dir.to_string()).or_default())
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.inner.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::Kind;

    fn entries(names: &[&str]) -> Vec<RemoteEntry> {
        names
            .iter()
            .map(|n| RemoteEntry {
                name: n.to_string(),
                kind: Kind::File,
                size: 1,
                mtime: None,
                mode: None,
                link_target: None,
            })
            .collect()
    }

    #[test]
    fn cached_listing_answers_until_the_ttl_passes() {
        let c = DirCache::new(Duration::from_millis(50), 100);
        c.insert("d", Listing::new(entries(&["b", "a"])), c.token());
        let l = c.get("d").unwrap();
        assert_eq!(l.entries[0].name, "a", "sorted by name");
        assert!(l.get("b").is_some() && l.get("c").is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get("d").is_none());
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn a_listing_fetched_before_an_invalidation_is_not_stored() {
        let c = DirCache::new(Duration::from_secs(60), 100);
        let token = c.token();
        c.invalidate("d");
        c.insert("d", Listing::new(entries(&["stale"])), token);
        assert!(c.get("d").is_none());
    }

    #[test]
    fn memory_is_bounded_by_total_entries() {
        let c = DirCache::new(Duration::from_secs(60), 5);
        c.insert("a", Listing::new(entries(&["1", "2", "3"])), c.token());
        c.insert("b", Listing::new(entries(&["1", "2", "3"])), c.token());
        assert!(c.get("a").is_none(), "least recently used went first");
        assert!(c.get("b").is_some());
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn own_changes_update_the_cached_listing_in_place() {
        let c = DirCache::new(Duration::from_secs(60), 100);
        c.insert("d", Listing::new(entries(&["a", "b"])), c.token());
        let stale = c.token();
        c.update("d", "c", Some(entries(&["c"]).remove(0)));
        c.update("d", "a", None);
        let l = c.get("d").unwrap();
        let names: Vec<&str> = l.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(c.total(), 2);
        // A fetch that started before the change must not overwrite it.
        c.insert("d", Listing::new(entries(&["a", "b"])), stale);
        assert!(c.get("d").unwrap().get("c").is_some());
    }

    #[test]
    fn a_tree_is_invalidated_with_its_subdirectories_only() {
        let c = DirCache::new(Duration::from_secs(60), 100);
        for d in ["a", "a/b", "a/b/c", "ab"] {
            c.insert(d, Listing::new(entries(&["x"])), c.token());
        }
        c.invalidate_tree("a");
        assert!(c.get("a").is_none() && c.get("a/b").is_none() && c.get("a/b/c").is_none());
        assert!(c.get("ab").is_some());
    }

    #[test]
    fn zero_ttl_disables_caching() {
        let c = DirCache::new(Duration::ZERO, 5);
        c.insert("a", Listing::new(entries(&["1"])), c.token());
        assert!(c.get("a").is_none());
    }
}
