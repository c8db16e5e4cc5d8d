//! Finding a mount in the kernel's mount table, without asking the filesystem.
//!
//! Whether our mount is still there, and still *ours*, decides whether an unmount by path is
//! safe: after `umount && mount` in a script a new mount sits at the same path, often with
//! the same anonymous device number. And the table must be read, not the mountpoint
//! stat'ed: a stat of our own mount from the serving process is a FUSE request to ourselves.
//! `/proc/self/mountinfo` answers both without touching any filesystem.

use std::path::Path;

/// Whether the mount on `mountpoint` is still the one with `device`, not gone or replaced.
pub fn still_mounted(mountpoint: &Path, device: &str) -> bool {
    mount_device(mountpoint).as_deref() == Some(device)
}

/// After our session ended: whether our mount is still there, dead. The device number alone
/// cannot tell: once our mount is gone, a new mount at the same path often gets the same
/// anonymous device (`umount && mount` in a script), and unmounting that one would be a
/// disaster (the remount test caught it). A dead FUSE mount answers everything with
/// ENOTCONN at once, without asking any daemon; a live one is served by its own process,
/// never by this one, whose session has ended.
pub fn dead_mount_remains(mountpoint: &Path, device: &str) -> bool {
    still_mounted(mountpoint, device)
        && std::fs::metadata(mountpoint).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
}

/// The `major:minor` of the mount at `mountpoint`, from /proc/self/mountinfo (the last,
/// i.e. topmost, mount there).
pub fn mount_device(mountpoint: &Path) -> Option<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mountpoint.to_str()?;
    table.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && unescape_mountinfo(f[4]) == want).then(|| f[2].to_string())
    })
}

/// The file system type and source of the topmost mount at `mountpoint`, from
/// /proc/self/mountinfo.
pub fn mount_at(mountpoint: &Path) -> Option<(String, String)> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mountpoint.to_str()?;
    table.lines().rev().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if unescape_mountinfo(left.split(' ').nth(4)?) != want {
            return None;
        }
        let mut r = right.split(' ');
        Some((r.next()?.to_string(), unescape_mountinfo(r.next()?)))
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`...).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            unescape_mountinfo(r"/tmp/a\040b\011c\134d"),
            "/tmp/a b\tc\\d"
        );
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/bad\04"), r"/bad\04");
    }

    #[test]
    fn the_device_of_a_mount_comes_from_the_mount_table() {
        let dev = mount_device(Path::new("/")).expect("/ is mounted");
        let (major, minor) = dev.split_once(':').unwrap();
        assert!(
            major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok(),
            "{dev}"
        );
        assert_eq!(mount_device(Path::new("/no/such/mount")), None);
    }
}
