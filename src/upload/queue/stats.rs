//! What `ftpfs status` and `ftpfs umount` learn of the write-back queue: a snapshot, and
//! the text it travels as through an `ioctl` on the mount's root (`ftpfs umount` runs in
//! another process than the daemon, and the mount is its only channel to it).

use std::path::PathBuf;
use std::time::Duration;

/// A snapshot of the queue, cheap enough for a status display polled every second.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Files queued or uploading.
    pub files: usize,
    pub bytes: u64,
    /// How long the oldest of them has waited.
    pub oldest: Option<Duration>,
    /// Uploads that failed for good this session: the file and where its data is.
    pub failed: Vec<(String, PathBuf)>,
    /// Files waiting for a server that cannot be reached, with their journal data.
    pub waiting: Vec<(String, PathBuf)>,
    /// Directories whose queued `mkdir` the server refused this session, with why. An empty
    /// one has no file to be named by, so it is named itself.
    pub refused_dirs: Vec<(String, String)>,
}

/// The `ioctl` on the mount's root that `ftpfs umount` asks for [`QueueStats`] (a private
/// type byte, read direction, [`STATS_SIZE`] bytes out): the one channel to the daemon that
/// needs no socket and costs other operations nothing.
pub const STATS_IOCTL: u32 = (2 << 30) | ((STATS_SIZE as u32) << 16) | (0xf7 << 8) | 1;
pub const STATS_SIZE: usize = 8192;

impl QueueStats {
    /// The text `ftpfs umount` reads: `files bytes oldest_ms`, then one `F\tpath\tkept` per
    /// failed file, one `W\tpath\tdata` per file waiting for the server and one
    /// `D\tpath\twhy` per refused directory, cut at `limit` bytes on a line end.
    pub fn encode(&self, limit: usize) -> Vec<u8> {
        let mut t = format!(
            "{} {} {}\n",
            self.files,
            self.bytes,
            self.oldest.map_or(0, |d| d.as_millis())
        );
        let lines = self
            .failed
            .iter()
            .map(|(p, kept)| ('F', p, kept.display().to_string()))
            .chain(
                self.waiting
                    .iter()
                    .map(|(p, data)| ('W', p, data.display().to_string())),
            )
            .chain(self.refused_dirs.iter().map(|(p, why)| {
                // A server's words: on one line, with no field separator in them.
                let why = why.replace(['\t', '\r', '\n'], " ");
                ('D', p, why)
            }));
        for (tag, path, data) in lines {
            let line = format!("{tag}\t{path}\t{data}\n");
            if t.len() + line.len() > limit {
                break;
            }
            t.push_str(&line);
        }
        t.into_bytes()
    }

    pub fn decode(text: &str) -> Option<QueueStats> {
        let mut lines = text.lines();
        let mut head = lines.next()?.split(' ');
        let mut stats = QueueStats {
            files: head.next()?.parse().ok()?,
            bytes: head.next()?.parse().ok()?,
            oldest: Some(Duration::from_millis(head.next()?.parse().ok()?)),
            ..QueueStats::default()
        };
        for l in lines {
            let mut f = l.splitn(3, '\t');
            let (tag, path, data) = (f.next()?, f.next()?, f.next()?);
            let entry = (path.to_string(), PathBuf::from(data));
            match tag {
                "F" => stats.failed.push(entry),
                "D" => stats
                    .refused_dirs
                    .push((path.to_string(), data.to_string())),
                _ => stats.waiting.push(entry),
            }
        }
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_survive_their_trip_through_the_ioctl() {
        let s = QueueStats {
            files: 3,
            bytes: 12345,
            oldest: Some(Duration::from_millis(1500)),
            failed: vec![("d/a b".into(), "/rec/1-a".into())],
            waiting: vec![("c".into(), "/j/0001.rec".into())],
            refused_dirs: vec![("e/f".into(), "552 Quota exceeded".into())],
        };
        let text = String::from_utf8(s.encode(STATS_SIZE)).unwrap();
        assert_eq!(QueueStats::decode(&text), Some(s.clone()));
        // A server's text with a tab or a line end in it stays one field of one line.
        let odd = QueueStats {
            refused_dirs: vec![("g".into(), "550 no\tway\r\nat all".into())],
            ..QueueStats::default()
        };
        let back = QueueStats::decode(&String::from_utf8(odd.encode(STATS_SIZE)).unwrap());
        assert_eq!(
            back.unwrap().refused_dirs,
            vec![("g".into(), "550 no way  at all".into())]
        );
        // Cut at a line end when it does not fit.
        let short = String::from_utf8(s.encode(30)).unwrap();
        let back = QueueStats::decode(&short).unwrap();
        assert_eq!((back.files, back.failed.len() + back.waiting.len()), (3, 1));
    }
}
