//! The bytes a reader delivered last, kept for reads that come late (overtaken readahead,
//! `less` scrolling back): see [`super`]'s module docs.

use std::collections::VecDeque;

use super::WINDOW;
use crate::remote::Data;

/// The bytes most recently delivered from a stream, `[end - bytes, end)`, as the buffers
/// they were delivered in (see [`Buffers`] for what happens to one that falls out).
#[derive(Default)]
pub(super) struct Window {
    /// Consecutive ranges of the file, oldest first; the last ends at `end`.
    chunks: VecDeque<Data>,
    pub(super) bytes: usize,
    pub(super) end: u64,
}

impl Window {
    pub(super) fn reset(&mut self, pos: u64) {
        self.chunks.clear();
        self.bytes = 0;
        self.end = pos;
    }

    fn start(&self) -> u64 {
        self.end - self.bytes as u64
    }

    /// Appends bytes that were read at `pos`; a gap resets the window. The oldest buffers
    /// go once the rest still hold [`WINDOW`] bytes.
    pub(super) fn push(&mut self, pos: u64, data: Data) {
        // Nothing new: a request served whole from the window (across two of its buffers)
        // pushes nothing at its own end, which is no gap. Resetting there emptied the
        // window, and a stream broken next resumed at the request instead of the window's
        // end: one more RETR for the request it had overtaken.
        if data.is_empty() {
            return;
        }
        if pos != self.end {
            self.reset(pos);
        }
        self.bytes += data.len();
        self.end += data.len() as u64;
        self.chunks.push_back(data);
        while self
            .chunks
            .front()
            .is_some_and(|f| self.bytes - f.len() >= WINDOW)
        {
            let old = self.chunks.pop_front().expect("checked");
            self.bytes -= old.len();
        }
    }

    /// The chunk holding `offset`, and where in it.
    fn find(&self, offset: u64) -> Option<(usize, usize)> {
        if offset < self.start() || offset >= self.end {
            return None;
        }
        let mut at = self.start();
        for (i, c) in self.chunks.iter().enumerate() {
            if offset < at + c.len() as u64 {
                return Some((i, (offset - at) as usize));
            }
            at += c.len() as u64;
        }
        None
    }

    /// `[offset, offset + len)` without copying, when one buffer holds all of it.
    pub(super) fn slice(&self, offset: u64, len: usize) -> Option<Data> {
        let (i, from) = self.find(offset)?;
        let c = &self.chunks[i];
        (c.len() - from >= len).then(|| c.sub(from, from + len))
    }

    /// Copies what the window holds from `offset` on into `out`; returns how many bytes.
    pub(super) fn copy_out(&self, offset: u64, out: &mut [u8]) -> usize {
        let Some((first, mut from)) = self.find(offset) else {
            return 0;
        };
        let mut copied = 0;
        for c in self.chunks.iter().skip(first) {
            if copied == out.len() {
                break;
            }
            let n = (c.len() - from).min(out.len() - copied);
            out[copied..copied + n].copy_from_slice(&c[from..from + n]);
            copied += n;
            from = 0;
        }
        copied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::Buffers;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 253) as u8).collect()
    }

    #[test]
    fn window_serves_recent_bytes_and_forgets_old_ones() {
        let mut w = Window::default();
        w.reset(100);
        let data = pattern((WINDOW / 1000 + 3) * 1000);
        for (k, piece) in data.chunks(1000).enumerate() {
            w.push(100 + 1000 * k as u64, piece.to_vec().into());
        }
        assert_eq!(w.end, 100 + data.len() as u64);
        assert!(w.bytes >= WINDOW && w.bytes < WINDOW + 1000, "{}", w.bytes);
        let mut out = [0u8; 10];
        assert_eq!(w.copy_out(100, &mut out), 0, "oldest bytes fell out");
        let off = w.end - 5;
        assert_eq!(w.copy_out(off, &mut out), 5);
        assert_eq!(&out[..5], &data[data.len() - 5..]);
        // Across two buffers: copied; inside one: shared, not copied.
        let off = w.end - 1005;
        assert_eq!(w.copy_out(off, &mut out), 10);
        assert_eq!(&out[..], &data[data.len() - 1005..data.len() - 995]);
        assert!(w.slice(off, 10).is_none());
        let d = w.slice(w.end - 1000, 1000).unwrap();
        assert_eq!(&*d, &data[data.len() - 1000..]);
    }

    #[test]
    fn window_resets_on_a_gap() {
        let mut w = Window::default();
        w.push(0, b"abc".to_vec().into());
        w.push(10, b"xyz".to_vec().into());
        let mut out = [0u8; 3];
        assert_eq!(w.copy_out(0, &mut out), 0);
        assert_eq!(w.copy_out(10, &mut out), 3);
        assert_eq!(&out, b"xyz");
    }

    /// Regression: a request served whole from the window pushes nothing, at its own end,
    /// which is not the window's: that emptied the window, and the next break of the
    /// stream cost one more RETR (the flake of
    /// `storage::a_download_cut_after_5_mib_resumes_at_that_byte` under load).
    #[test]
    fn nothing_pushed_behind_the_end_keeps_the_window() {
        let mut w = Window::default();
        w.push(0, b"abcdef".to_vec().into());
        w.push(3, Vec::new().into());
        assert_eq!((w.end, w.bytes), (6, 6));
        let mut out = [0u8; 6];
        assert_eq!(w.copy_out(0, &mut out), 6);
    }

    #[test]
    fn buffers_come_back_when_the_window_and_the_reply_are_done_with_them() {
        let buffers = Buffers::new();
        let mut w = Window::default();
        let mb = 1 << 20;
        let first = buffers.get(mb);
        let first_ptr = first.as_ptr();
        let reply = buffers.data(first, 0, mb);
        w.push(0, reply.sub(0, mb));
        for k in 1..=WINDOW / mb {
            w.push((k * mb) as u64, buffers.data(buffers.get(mb), 0, mb));
        }
        // Out of the window, but a reply still holds it: not free yet.
        assert!(w.find(0).is_none());
        let other = buffers.get(mb);
        assert_ne!(other.as_ptr(), first_ptr);
        drop(reply);
        let next = buffers.get(mb);
        assert_eq!(next.as_ptr(), first_ptr, "reused once the reply was sent");
        assert_eq!(buffers.allocated(), 2 + (WINDOW / mb) as u64);
        // Far larger than asked for is not handed out for a small read.
        buffers.put(vec![0u8; 4 * mb]);
        assert_eq!(buffers.get(1000).len(), 64 * 1024);
    }
}
