//! The path ⇄ inode table.
//!
//! FTP names files by path; the kernel names them by inode number and counts how many
//! references it holds (each successful `lookup` or `readdirplus` entry is one, `forget`
//! returns them). A node lives while the kernel holds references; inode numbers are never
//! reused within a mount, so the generation number can stay 0.
//!
//! Entries handed out by plain `readdir` (which takes no reference) get a number too, so that
//! `ls -i` and a later `lookup` agree; they are kept with a count of zero.

use std::collections::HashMap;

use parking_lot::Mutex;

pub const ROOT: u64 = 1;

pub struct InodeTable {
    inner: Mutex<Inner>,
}

struct Inner {
    by_ino: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next: u64,
}

struct Node {
    path: String,
    lookups: u64,
}

impl Default for InodeTable {
    fn default() -> Self {
        let mut by_ino = HashMap::new();
        by_ino.insert(
            ROOT,
            Node {
                path: String::new(),
                lookups: 1,
            },
        );
        let mut by_path = HashMap::new();
        by_path.insert(String::new(), ROOT);
        InodeTable {
            inner: Mutex::new(Inner {
                by_ino,
                by_path,
                next: ROOT + 1,
            }),
        }
    }
}

impl InodeTable {
    /// The mount-relative path of `ino`, if the kernel still holds it.
    pub fn path(&self, ino: u64) -> Option<String> {
        self.inner.lock().by_ino.get(&ino).map(|n| n.path.clone())
    }

    /// The inode of `path`, taking one kernel reference (lookup, readdirplus).
    pub fn lookup(&self, path: &str) -> u64 {
        self.get_or_insert(path, 1)
    }

    /// The inode of `path` if it has one; never makes one.
    pub fn find(&self, path: &str) -> Option<u64> {
        self.inner.lock().by_path.get(path).copied()
    }

    /// The inode of `path` without taking a reference (plain readdir).
    pub fn peek(&self, path: &str) -> u64 {
        self.get_or_insert(path, 0)
    }

    fn get_or_insert(&self, path: &str, refs: u64) -> u64 {
        let mut inner = self.inner.lock();
        if let Some(&ino) = inner.by_path.get(path) {
            if let Some(node) = inner.by_ino.get_mut(&ino) {
                node.lookups += refs;
            }
            return ino;
        }
        let ino = inner.next;
        inner.next += 1;
        inner.by_ino.insert(
            ino,
            Node {
                path: path.to_string(),
                lookups: refs,
            },
        );
        inner.by_path.insert(path.to_string(), ino);
        ino
    }

    /// `path` no longer names anything (unlink, rmdir): lookups of it get a new inode, while
    /// the kernel's references to the old one stay valid until forgotten.
    pub fn unlink(&self, path: &str) {
        let mut inner = self.inner.lock();
        if let Some(ino) = inner.by_path.remove(path) {
            if let Some(node) = inner.by_ino.get_mut(&ino) {
                node.path = format!("\0unlinked/{ino}");
            }
        }
    }

    /// `from` and everything below it now live at `to`; whatever was at `to` is unlinked.
    pub fn rename(&self, from: &str, to: &str) {
        self.unlink(to);
        let mut inner = self.inner.lock();
        let prefix = format!("{from}/");
        let moved: Vec<(String, u64)> = inner
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        for (old, ino) in moved {
            let new = format!("{to}{}", &old[from.len()..]);
            inner.by_path.remove(&old);
            inner.by_path.insert(new.clone(), ino);
            if let Some(node) = inner.by_ino.get_mut(&ino) {
                node.path = new;
            }
        }
    }

    /// The kernel dropped `n` references; the node goes when none are left. Returns
    /// whether it went.
    pub fn forget(&self, ino: u64, n: u64) -> bool {
        if ino == ROOT {
            return false;
        }
        let mut inner = self.inner.lock();
        let gone = match inner.by_ino.get_mut(&ino) {
            Some(node) => {
                node.lookups = node.lookups.saturating_sub(n);
                node.lookups == 0
            }
            None => false,
        };
        if gone {
            if let Some(node) = inner.by_ino.remove(&ino) {
                if inner.by_path.get(&node.path) == Some(&ino) {
                    inner.by_path.remove(&node.path);
                }
            }
        }
        gone
    }

    #[cfg(test)]
    pub fn node_count(&self) -> usize {
        self.inner.lock().by_ino.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_share_an_inode_until_all_are_forgotten() {
        let t = InodeTable::default();
        let a = t.lookup("a");
        assert_eq!(t.lookup("a"), a);
        assert_eq!(t.path(a).as_deref(), Some("a"));
        t.forget(a, 1);
        assert_eq!(t.path(a).as_deref(), Some("a"));
        t.forget(a, 1);
        assert_eq!(t.path(a), None);
        let again = t.lookup("a");
        assert_ne!(again, a, "inode numbers are not reused");
    }

    #[test]
    fn renames_move_whole_subtrees_and_unlinked_names_get_new_inodes() {
        let t = InodeTable::default();
        let d = t.lookup("d");
        let f = t.lookup("d/f");
        let other = t.lookup("e");
        t.rename("d", "e");
        assert_eq!(t.path(d).as_deref(), Some("e"));
        assert_eq!(t.path(f).as_deref(), Some("e/f"));
        assert_ne!(t.lookup("e"), other, "the replaced target is detached");
        assert_eq!(t.lookup("e/f"), f);
        t.unlink("e/f");
        assert_ne!(t.lookup("e/f"), f);
        // forgetting the detached node does not disturb the new one
        let newf = t.lookup("e/f");
        t.forget(f, 10);
        assert_eq!(t.lookup("e/f"), newf);
    }

    #[test]
    fn root_is_never_forgotten() {
        let t = InodeTable::default();
        assert!(!t.forget(ROOT, 100));
        assert_eq!(t.path(ROOT).as_deref(), Some(""));
        assert_eq!(t.node_count(), 1);
    }
}
