//! The bookkeeping of segmented reads (see [`super`]): which ranges of the file are held,
//! who fetches them, what the reader finds at a position, and how many segments the
//! measured rate asks for. Pure data under the segments' lock, no I/O: unit-tested here.

use std::collections::VecDeque;
use std::time::Instant;

use super::{CHUNK, INTERVAL, MAX_CHUNK, RANGE_TIME};

/// The least a range split near the end of the file leaves to each half: starting a range
/// costs about 3 round trips.
pub(super) const MIN_SPLIT: u64 = 1 << 20;
/// The least a range sized for the segments to end together gets ([`Plan::range_len`]):
/// at the end of the file the alternative is an idle connection, and 256 KiB take 0.125 s
/// at 2 MiB/s, about what starting the range costs at 50 ms.
pub(super) const MIN_SHARE: u64 = 256 * 1024;
/// Where a range is split: on a 64 KiB boundary.
const READ_ALIGN: u64 = 64 * 1024;
/// How far behind its newest read the reader may still ask for bytes of the segments:
/// one request of the kernel (its largest, `max_readahead`, is 1 MiB), so that a request
/// overtaken by the next two still finds its bytes.
pub(super) const LATE: u64 = 1 << 20;

/// A range to fetch: the range `[start, end)`, from its first missing byte `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Job {
    pub(super) start: u64,
    pub(super) from: u64,
    pub(super) end: u64,
    /// The file's last range: read to the end of the transfer, whose `226` proves it.
    pub(super) last: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkState {
    /// Not taken, or cut and waiting to be resumed.
    Waiting,
    Taken,
    /// Complete; or ended early by the server (a shorter file): `eof` when the file's end
    /// is proved here.
    Done {
        eof: bool,
    },
    /// Failed for good: the reader fetches it itself.
    Failed,
}
pub(super) use ChunkState::*;

pub(super) struct Chunk {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) data: Vec<u8>,
    pub(super) state: ChunkState,
    pub(super) failures: u32,
}

impl Chunk {
    pub(super) fn new(start: u64, end: u64, state: ChunkState) -> Chunk {
        Chunk {
            start,
            end,
            data: Vec::new(),
            state,
            failures: 0,
        }
    }
}

/// What the reader finds at a position.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Served {
    Bytes(usize),
    /// Being fetched: wait.
    Wait,
    /// The file ends here.
    Eof,
    /// Not fetched by segments: the reader's own stream reads it.
    NotHere,
}

/// The ranges of one file and who fetches them. Pure bookkeeping, under the shared lock.
pub(super) struct Plan {
    pub(super) size: u64,
    /// The ranges held, in file order, contiguous; the first one may be partly read.
    pub(super) chunks: VecDeque<Chunk>,
    /// The first byte of the file in no range yet.
    pub(super) next: u64,
    /// The reader has read everything before this (the end of its furthest read).
    pub(super) consumed: u64,
    /// Ranges ending here or before are freed once complete ([`Plan::release`]).
    pub(super) passed: u64,
    pub(super) cancelled: bool,
    /// The last range ended with the server's `226` at the listed size.
    pub(super) eof: bool,
    /// No new ranges: segments did not help, or there is no connection for them.
    pub(super) disbanded: bool,
    /// Segments alive, and those being started (looking for a connection).
    pub(super) workers: usize,
    pub(super) spawning: usize,
    /// Segments wanted now; at most `cap`.
    pub(super) target: usize,
    pub(super) cap: usize,
    /// How long a new range is ([`range_for`]): at the single stream's rate until the
    /// segments' rate is judged, then at each segment's ([`Plan::step`]).
    pub(super) chunk_len: u64,
    /// Segments were measured to help: ranges are sized by [`Plan::range_len`].
    pub(super) judged: bool,
    pub(super) ramp: Ramp,
    /// Bytes held in ranges now, and the most ever.
    pub(super) held: usize,
    pub(super) peak: usize,
    pub(super) tally: Tally,
}

#[derive(Default, Debug)]
pub(super) struct Tally {
    pub(super) ranges: u64,
    pub(super) splits: u64,
    pub(super) resumes: u64,
    pub(super) most_workers: usize,
    /// The longest range handed out (a split's first half keeps its original length).
    pub(super) longest: u64,
}

/// The measurement that decides how many segments: see the module docs.
pub(super) struct Ramp {
    pub(super) growing: bool,
    /// Waiting for the newest segment's first bytes before measuring.
    pub(super) settling: bool,
    pub(super) since: Instant,
    pub(super) bytes_then: u64,
    pub(super) received: u64,
    /// The rate at the previous number of segments (the single stream's at first), and
    /// that number.
    pub(super) rate_before: f64,
    pub(super) workers_before: usize,
}

/// What the measurement says to do.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    Nothing,
    /// This many more segments.
    Add(usize),
    /// The newest segment added nothing: one fewer.
    Fewer,
    /// Segments do not help at all.
    Stop,
}

/// The length of a range one connection fetches in [`RANGE_TIME`] at `rate` (bytes per
/// second): long enough for the round trips that start it to matter little, and at least
/// [`CHUNK`], at most [`MAX_CHUNK`] (the memory held is `segments + 1` ranges).
fn range_for(rate: f64) -> u64 {
    let len = (rate * RANGE_TIME.as_secs_f64()) as u64;
    (len / READ_ALIGN * READ_ALIGN).clamp(CHUNK, MAX_CHUNK)
}

impl Plan {
    /// The plan of a `size`-byte file read from `at`, by `first` segments at first (at
    /// least one, at most `cap`), the single stream having run at `rate`.
    pub(super) fn new(size: u64, at: u64, cap: usize, first: usize, rate: f64) -> Plan {
        Plan {
            size,
            chunks: VecDeque::new(),
            next: at,
            consumed: at,
            passed: at,
            cancelled: false,
            eof: false,
            disbanded: false,
            workers: 0,
            spawning: 0,
            target: first.clamp(1, cap.max(1)),
            cap,
            chunk_len: range_for(rate),
            judged: false,
            ramp: Ramp {
                growing: true,
                settling: true,
                since: Instant::now(),
                bytes_then: 0,
                received: 0,
                rate_before: rate,
                workers_before: 1,
            },
            held: 0,
            peak: 0,
            tally: Tally::default(),
        }
    }

    /// The next range for a segment: one cut earlier first, else a new one, if fewer than
    /// `target + 1` are held (the memory bound).
    pub(super) fn take(&mut self) -> Option<Job> {
        if self.cancelled {
            return None;
        }
        let size = self.size;
        if let Some(c) = self.chunks.iter_mut().find(|c| c.state == Waiting) {
            c.state = Taken;
            self.tally.resumes += u64::from(c.failures > 0);
            return Some(Job {
                start: c.start,
                from: c.start + c.data.len() as u64,
                end: c.end,
                last: c.end == size,
            });
        }
        if self.disbanded {
            return None;
        }
        if self.next >= size {
            return self.steal();
        }
        if self.chunks.len() > self.target {
            return None;
        }
        let start = self.next;
        let end = (start + self.range_len(start)).min(size);
        self.tally.longest = self.tally.longest.max(end - start);
        self.chunks.push_back(Chunk::new(start, end, Taken));
        self.next = end;
        Some(Job {
            start,
            from: start,
            end,
            last: end == size,
        })
    }

    /// The length of a new range at `start`: [`Plan::chunk_len`]; once the segments are
    /// judged useful, near the end of the file an equal share of what is left to
    /// fetch (not taken yet, and still to come in the ranges being fetched) among the
    /// segments, so that they end together instead of one connection fetching the tail
    /// alone (at least [`MIN_SHARE`], and no tail shorter than that left behind).
    fn range_len(&self, start: u64) -> u64 {
        if !self.judged {
            return self.chunk_len;
        }
        let left = self.size - start;
        let coming: u64 = self
            .chunks
            .iter()
            .filter(|c| c.state == Taken)
            .map(|c| c.end - c.start - c.data.len() as u64)
            .sum();
        let share =
            ((left + coming) / self.workers.max(1) as u64).div_ceil(READ_ALIGN) * READ_ALIGN;
        let len = share.clamp(MIN_SHARE, self.chunk_len);
        if left.saturating_sub(len) < MIN_SHARE && left <= self.chunk_len {
            left
        } else {
            len
        }
    }

    /// Near the end of the file, a free segment takes the second half of the range with
    /// the most bytes still to come (if at least 2 × [`MIN_SPLIT`]), so that the last
    /// ranges end together instead of one connection fetching the tail alone. The segment
    /// fetching it learns its new end at its next bytes ([`Plan::bounds`]).
    fn steal(&mut self) -> Option<Job> {
        let size = self.size;
        let (i, left) = self
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state == Taken)
            .map(|(i, c)| (i, c.end - c.start - c.data.len() as u64))
            .max_by_key(|&(_, left)| left)?;
        if left < 2 * MIN_SPLIT {
            return None;
        }
        let c = &mut self.chunks[i];
        let at = c.end - left / 2 / READ_ALIGN * READ_ALIGN;
        let end = c.end;
        c.end = at;
        self.chunks.insert(i + 1, Chunk::new(at, end, Taken));
        self.tally.splits += 1;
        Some(Job {
            start: at,
            from: at,
            end,
            last: end == size,
        })
    }

    /// The range `start` ends at (a steal may have moved it), and whether it is the last.
    pub(super) fn bounds(&self, start: u64) -> Option<(u64, bool)> {
        let c = self.chunks.iter().find(|c| c.start == start)?;
        Some((c.end, c.end == self.size))
    }

    pub(super) fn chunk(&mut self, start: u64) -> Option<&mut Chunk> {
        self.chunks.iter_mut().find(|c| c.start == start)
    }

    /// Bytes of the range `start` arrived; `false` when nobody wants them any more.
    pub(super) fn append(&mut self, start: u64, bytes: &[u8]) -> bool {
        if self.cancelled {
            return false;
        }
        let Some(c) = self.chunk(start) else {
            return false;
        };
        if c.data.capacity() == 0 {
            c.data.reserve_exact((c.end - c.start) as usize);
        }
        c.data.extend_from_slice(bytes);
        self.held += bytes.len();
        self.peak = self.peak.max(self.held);
        self.ramp.received += bytes.len() as u64;
        true
    }

    pub(super) fn finish(&mut self, start: u64, state: ChunkState) {
        if let Some(c) = self.chunk(start) {
            c.state = state;
            self.eof |= state == (Done { eof: true });
        }
    }

    /// A segment failed on range `start`: it waits for another attempt, or is left to the
    /// reader after `retries`. Returns the number of failures of the range.
    pub(super) fn fail(&mut self, start: u64, retryable: bool, retries: u32) -> u32 {
        let Some(c) = self.chunk(start) else {
            return 0;
        };
        c.failures += 1;
        c.state = if retryable && c.failures <= retries {
            Waiting
        } else {
            Failed
        };
        c.failures
    }

    /// Copies what is here from `at` on.
    pub(super) fn copy(&self, at: u64, out: &mut [u8]) -> Served {
        if self.cancelled {
            return Served::NotHere;
        }
        let Some(c) = self.chunks.iter().find(|c| c.start <= at && at < c.end) else {
            return if at == self.size && self.eof {
                Served::Eof
            } else {
                Served::NotHere
            };
        };
        let have = c.start + c.data.len() as u64;
        if at < have {
            let from = (at - c.start) as usize;
            let n = (c.data.len() - from).min(out.len());
            out[..n].copy_from_slice(&c.data[from..from + n]);
            return Served::Bytes(n);
        }
        match c.state {
            Done { .. } | Failed => Served::NotHere,
            Waiting if self.workers == 0 && self.spawning == 0 => Served::NotHere,
            Waiting | Taken => Served::Wait,
        }
    }

    /// The reader read `[at, end)`: ranges it is past by [`LATE`] are freed. Whether any
    /// was. Not those it is just past: the kernel's requests come on several threads and
    /// one may overtake another (the read of `[43, 44)` MiB before that of `[42, 43)`); a
    /// range freed too early left the late read to the reader's own stream, a `RETR` whose
    /// checkout took a connection back from a segment (measured: 1.5 s more for a 64 MiB
    /// read at 2 MiB/s per session, in two runs of three). The bound stays `segments + 1`
    /// ranges: a range kept counts in it.
    pub(super) fn release(&mut self, at: u64, end: u64) -> bool {
        self.consumed = self.consumed.max(end);
        self.passed = self.passed.max(at.saturating_sub(LATE));
        let mut freed = false;
        while let Some(c) = self.chunks.front() {
            let gone = c.end <= self.passed && matches!(c.state, Done { .. } | Failed);
            if !gone {
                break;
            }
            let c = self.chunks.pop_front().expect("checked");
            self.held -= c.data.len();
            freed = true;
        }
        freed
    }

    /// A read at `at` that found nothing here is far from the ranges: a seek.
    pub(super) fn far(&self, at: u64) -> bool {
        let front = self.chunks.front().map_or(self.next, |c| c.start);
        at + super::super::SKIP_MAX < front.min(self.consumed)
            || at > self.next + super::super::SKIP_MAX
    }

    /// No segment will fetch anything more: the reader reads on with its own stream.
    pub(super) fn over(&self) -> bool {
        self.disbanded && self.workers == 0 && self.spawning == 0
    }

    /// Measures after bytes arrived (see [`Ramp`]).
    pub(super) fn step(&mut self, now: Instant) -> Step {
        let r = &mut self.ramp;
        if !r.growing || r.settling || self.spawning > 0 || now.duration_since(r.since) < INTERVAL {
            return Step::Nothing;
        }
        let secs = now.duration_since(r.since).as_secs_f64();
        let rate = (r.received - r.bytes_then) as f64 / secs;
        let n = self.workers;
        let before = r.workers_before.max(1) as f64;
        // Against the single stream (measured differently, with its first burst): a
        // quarter more. Then half of what the added connections could add at best.
        let need = if r.workers_before <= 1 {
            r.rate_before * 1.25
        } else {
            r.rate_before * (1.0 + 0.5 * (n as f64 - before) / before)
        };
        log::debug!(
            "segments: {n} at {:.0} KiB/s (needed {:.0} KiB/s)",
            rate / 1024.0,
            need / 1024.0
        );
        if n > r.workers_before && rate >= need {
            // Each segment's rate is known now.
            self.chunk_len = range_for(rate / n as f64);
            self.judged = true;
            // Several started at once against the single stream: a quarter faster is worth
            // keeping them, but if they brought less than half of what they could, one
            // goes (as a segment added later would).
            let half = r.rate_before * (1.0 + 0.5 * (n as f64 - before) / before);
            if r.workers_before <= 1 && n > 2 && rate < half {
                r.growing = false;
                return Step::Fewer;
            }
            r.rate_before = rate;
            r.workers_before = n;
            r.since = now;
            r.bytes_then = r.received;
            if self.target < self.cap && !self.disbanded {
                // Per-session limits: as many as the pool gives, at once (one at a time
                // would take seconds each); the next measurement takes one back if the
                // last ones added nothing.
                return Step::Add(self.cap - self.target);
            }
            r.growing = false;
            return Step::Nothing;
        }
        r.growing = false;
        if r.workers_before <= 1 {
            Step::Stop
        } else {
            Step::Fewer
        }
    }

    /// The newest segment's first bytes: measure from now.
    pub(super) fn settled(&mut self, now: Instant) {
        let r = &mut self.ramp;
        if r.settling {
            r.settling = false;
            r.since = now;
            r.bytes_then = r.received;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(from: u64, n: usize) -> Vec<u8> {
        (from..from + n as u64).map(|i| (i % 251) as u8).collect()
    }

    /// A plan of a `size`-byte file whose reader is at 0, with `cap` segments at most.
    fn plan(size: u64, cap: usize) -> Plan {
        let mut p = Plan::new(size, 0, cap, 2, 1.0);
        p.target = cap;
        p.workers = cap;
        p
    }

    #[test]
    fn ranges_are_reassembled_in_order_whatever_order_they_arrive_in() {
        let size = 3 * CHUNK + 1000;
        let mut p = plan(size, 4);
        let jobs: Vec<Job> = (0..4).map(|_| p.take().unwrap()).collect();
        assert_eq!(jobs.len(), 4);
        assert_eq!(jobs[3].end, size);
        assert!(jobs[3].last && !jobs[2].last);
        // The last range first, the first last, in pieces.
        for j in jobs.iter().rev() {
            for piece in (j.start..j.end).step_by(300_000) {
                let n = (j.end - piece).min(300_000) as usize;
                assert!(p.append(j.start, &pattern(piece, n)));
            }
            p.finish(j.start, Done { eof: j.last });
        }
        let mut got = Vec::new();
        let mut out = vec![0u8; 128 * 1024];
        loop {
            let at = got.len() as u64;
            match p.copy(at, &mut out) {
                Served::Bytes(n) => got.extend_from_slice(&out[..n]),
                Served::Eof => break,
                other => panic!("at {}: {other:?}", got.len()),
            }
            p.release(at, got.len() as u64);
        }
        assert_eq!(got, pattern(0, size as usize));
        // Every range freed once read, but those a late request may still ask for.
        assert!(p.chunks.iter().all(|c| c.end + LATE > size), "{}", p.held);
        assert!(p.chunks.len() < jobs.len());
    }

    #[test]
    fn the_reader_waits_for_bytes_on_the_way_and_gets_them_in_pieces() {
        let mut p = plan(4 * CHUNK, 2);
        let j = p.take().unwrap();
        let mut out = [0u8; 10];
        assert_eq!(p.copy(0, &mut out), Served::Wait);
        p.append(j.start, &pattern(0, 4));
        assert_eq!(p.copy(0, &mut out), Served::Bytes(4));
        assert_eq!(p.copy(4, &mut out), Served::Wait);
        // Beyond what is planned: not here.
        assert_eq!(p.copy(3 * CHUNK, &mut out), Served::NotHere);
    }

    #[test]
    fn bytes_held_never_exceed_one_range_more_than_the_segments() {
        let size = 40 * CHUNK;
        for cap in 1..=4 {
            let mut p = plan(size, cap);
            let mut read = 0u64;
            let mut out = vec![0u8; 1 << 20];
            // Segments fetch everything they may, the reader reads a little, again.
            while read < size {
                while let Some(j) = p.take() {
                    p.append(j.start, &pattern(j.from, (j.end - j.from) as usize));
                    p.finish(j.start, Done { eof: j.last });
                }
                assert!(p.held as u64 <= (cap as u64 + 1) * CHUNK, "{}", p.held);
                match p.copy(read, &mut out) {
                    Served::Bytes(n) => {
                        p.release(read, read + n as u64);
                        read += n as u64;
                    }
                    other => panic!("{other:?}"),
                }
            }
            assert!(p.peak as u64 <= (cap as u64 + 1) * CHUNK);
            assert!(p.peak as u64 > cap as u64 * CHUNK, "the bound is reached");
        }
    }

    #[test]
    fn a_read_overtaken_by_the_next_two_still_finds_its_bytes() {
        let size = 4 * CHUNK;
        let mut p = plan(size, 2);
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        for j in [a, b] {
            p.append(j.start, &pattern(j.start, (j.end - j.start) as usize));
            p.finish(j.start, Done { eof: false });
        }
        let mib = 1 << 20;
        let mut out = vec![0u8; mib as usize];
        // The kernel's requests for [3, 4) MiB and [4, 5) MiB are served before [2, 3).
        for at in [3 * mib, 4 * mib] {
            assert_eq!(p.copy(at, &mut out), Served::Bytes(mib as usize));
            p.release(at, at + mib);
        }
        assert_eq!(p.copy(2 * mib, &mut out), Served::Bytes(mib as usize));
        assert_eq!(out, pattern(2 * mib, mib as usize));
        p.release(2 * mib, 3 * mib);
        // Once the reader is a request past it, the range is freed.
        assert!(p.release(5 * mib, 6 * mib), "the first range goes");
        assert_eq!(p.chunks.front().map(|c| c.start), Some(b.start));
    }

    #[test]
    fn a_cut_range_is_taken_again_from_its_first_missing_byte() {
        let mut p = plan(8 * CHUNK, 2);
        let a = p.take().unwrap();
        p.append(a.start, &pattern(0, 1000));
        assert_eq!(p.fail(a.start, true, 5), 1);
        let again = p.take().unwrap();
        assert_eq!((again.start, again.from), (0, 1000));
        assert_eq!(p.tally.resumes, 1);
        // Not retryable, or out of retries: left to the reader, who reads it itself.
        p.fail(again.start, false, 5);
        let mut out = [0u8; 2000];
        assert_eq!(p.copy(0, &mut out), Served::Bytes(1000));
        assert_eq!(p.copy(1000, &mut out), Served::NotHere);
    }

    #[test]
    fn the_end_counts_only_from_the_last_ranges_success() {
        let size = CHUNK + 10;
        let mut p = plan(size, 2);
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert!(b.last);
        p.append(a.start, &pattern(0, CHUNK as usize));
        p.finish(a.start, Done { eof: false });
        p.append(b.start, &pattern(CHUNK, 10));
        let mut out = [0u8; 100];
        p.release(size, size);
        assert_eq!(p.copy(size, &mut out), Served::NotHere, "no 226 yet");
        p.finish(b.start, Done { eof: true });
        assert_eq!(p.copy(size, &mut out), Served::Eof);
        // A range the server ended early (the file shrank) is not served past its bytes.
        let mut p = plan(3 * CHUNK, 2);
        let a = p.take().unwrap();
        p.append(a.start, &pattern(0, 10));
        p.finish(a.start, Done { eof: false });
        assert_eq!(p.copy(10, &mut out), Served::NotHere);
    }

    #[test]
    fn a_segment_is_added_while_the_rate_grows_and_stops_when_it_does_not() {
        let t0 = Instant::now();
        let mut p = Plan::new(100 * CHUNK, 0, 4, 2, 1000.0);
        p.workers = 2;
        p.settled(t0);
        // Two connections, twice the single stream: one more.
        let secs = INTERVAL.as_secs_f64();
        p.ramp.received = (2000.0 * secs) as u64;
        assert_eq!(
            p.step(t0 + INTERVAL),
            Step::Add(2),
            "as many as the pool gives"
        );
        p.target += 2;
        p.workers = 4;
        p.ramp.settling = true;
        p.settled(t0 + INTERVAL);
        // Four, no faster than two: one fewer, and no more tries.
        p.ramp.received += (2000.0 * secs) as u64;
        assert_eq!(p.step(t0 + 2 * INTERVAL), Step::Fewer);
        assert_eq!(p.step(t0 + 4 * INTERVAL), Step::Nothing);
        // Two no faster than one: segments stop.
        let mut p = Plan::new(100 * CHUNK, 0, 4, 2, 1000.0);
        p.workers = 2;
        p.settled(t0);
        p.ramp.received = (1200.0 * secs) as u64;
        assert_eq!(p.step(t0 + INTERVAL), Step::Stop);
    }

    #[test]
    fn several_started_at_once_and_faster_make_ranges_longer_within_the_bound() {
        let t0 = Instant::now();
        let secs = INTERVAL.as_secs_f64();
        let size = 200 * CHUNK;
        // Four started at once against a single stream of 2 MiB/s, 4.2 times as fast.
        let single = 2.0 * 1024.0 * 1024.0;
        let mut p = Plan::new(size, 0, 4, 4, single);
        assert_eq!(p.target, 4, "all four wanted from the start");
        p.workers = 4;
        // Not judged yet: as long as the single stream fetches in RANGE_TIME.
        let first = p.take().unwrap();
        assert_eq!(first.end - first.start, MAX_CHUNK);
        p.append(first.start, &pattern(0, MAX_CHUNK as usize));
        p.finish(first.start, Done { eof: false });
        p.settled(t0);
        p.ramp.received += (4.2 * single * secs) as u64;
        assert_eq!(p.step(t0 + INTERVAL), Step::Nothing, "judged: all kept");
        // 2.1 MiB/s each for RANGE_TIME is more than MAX_CHUNK.
        assert_eq!(p.chunk_len, MAX_CHUNK);
        let mut read = 0u64;
        let mut out = vec![0u8; 1 << 20];
        let mut lens = vec![MAX_CHUNK];
        while read < size {
            while let Some(j) = p.take() {
                lens.push(j.end - j.start);
                p.append(j.start, &pattern(j.from, (j.end - j.from) as usize));
                p.finish(j.start, Done { eof: j.last });
            }
            assert!(p.held as u64 <= 5 * MAX_CHUNK, "{}", p.held);
            match p.copy(read, &mut out) {
                Served::Bytes(n) => {
                    p.release(read, read + n as u64);
                    read += n as u64;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(p.tally.longest, MAX_CHUNK);
        // Long from the judgement on, then, near the end, equal shares of what is left:
        // shorter again, never below MIN_SHARE (the last takes what is left whole).
        assert_eq!(lens[1], MAX_CHUNK, "{lens:?}");
        let n = lens.len();
        assert!(lens[1..n - 1].windows(2).all(|w| w[0] >= w[1]), "{lens:?}");
        assert!(lens.iter().all(|&l| l >= MIN_SHARE), "{lens:?}");
        assert!(lens[n - 1] < 2 * MIN_SHARE, "{lens:?}");
        assert!(p.peak as u64 > 4 * MAX_CHUNK, "the bound is reached");
    }

    #[test]
    fn near_the_end_ranges_are_sized_for_the_segments_to_end_together() {
        let size = 40 * CHUNK;
        let mut p = plan(size, 4);
        p.judged = true;
        p.chunk_len = MAX_CHUNK;
        // Three segments are fetching, with 2, 4 and 6 MiB still to come; 10 MiB are not
        // taken yet.
        let mib = 1 << 20;
        p.next = size - 10 * mib;
        for (i, coming) in [2, 4, 6].into_iter().enumerate() {
            let start = p.next - 8 * mib * (3 - i as u64);
            p.chunks
                .push_back(Chunk::new(start, start + 8 * mib, Taken));
            p.append(start, &vec![0; ((8 - coming) * mib) as usize]);
        }
        // The fourth gets a quarter of the 22 MiB to come, not MAX_CHUNK.
        let j = p.take().unwrap();
        assert_eq!(j.end - j.start, 22 * mib / 4);
        // What is left is taken whole rather than leaving a sliver behind.
        p.chunks
            .iter_mut()
            .for_each(|c| c.state = Done { eof: false });
        p.next = size - MIN_SHARE - MIN_SHARE / 2;
        assert_eq!(p.take().map(|j| j.end), Some(size));
    }

    #[test]
    fn several_started_at_once_that_bring_little_lose_one() {
        let t0 = Instant::now();
        let secs = INTERVAL.as_secs_f64();
        // Four at once, 1.5 times the single stream: worth it, but one goes.
        let mut p = Plan::new(100 * CHUNK, 0, 4, 4, 1000.0);
        p.workers = 4;
        p.settled(t0);
        p.ramp.received = (1500.0 * secs) as u64;
        assert_eq!(p.step(t0 + INTERVAL), Step::Fewer);
        // No faster at all: segments stop.
        let mut p = Plan::new(100 * CHUNK, 0, 4, 4, 1000.0);
        p.workers = 4;
        p.settled(t0);
        p.ramp.received = (1100.0 * secs) as u64;
        assert_eq!(p.step(t0 + INTERVAL), Step::Stop);
        assert_eq!(
            p.chunk_len, CHUNK,
            "ranges stay short when segments do not help"
        );
    }

    #[test]
    fn near_the_end_a_free_segment_takes_the_second_half_of_the_longest_range() {
        let size = 2 * CHUNK;
        let mut p = plan(size, 3);
        let a = p.take().unwrap();
        let b = p.take().unwrap();
        assert!(b.last);
        p.append(a.start, &pattern(0, 1 << 20));
        // Nothing new to take: half of what `b` still has to fetch.
        let c = p.take().unwrap();
        assert_eq!((c.start, c.end, c.last), (CHUNK + CHUNK / 2, size, true));
        assert_eq!(
            p.bounds(b.start),
            Some((c.start, false)),
            "b learns its new end"
        );
        // Then `a`, whose 3 MiB left are the most.
        let d = p.take().unwrap();
        assert_eq!(d.start, CHUNK - (3 << 20) / 2);
        assert_eq!(p.bounds(a.start), Some((d.start, false)));
        // Every byte still comes in order.
        for (start, from, end) in [(a.start, 1 << 20, d.start), (d.start, d.start, d.end)] {
            p.append(start, &pattern(from, (end - from) as usize));
            p.finish(start, Done { eof: false });
        }
        for (start, end, eof) in [(b.start, c.start, false), (c.start, c.end, true)] {
            p.append(start, &pattern(start, (end - start) as usize));
            p.finish(start, Done { eof });
        }
        let mut got = Vec::new();
        let mut out = vec![0u8; 300_000];
        while let Served::Bytes(n) = p.copy(got.len() as u64, &mut out) {
            let at = got.len() as u64;
            got.extend_from_slice(&out[..n]);
            p.release(at, got.len() as u64);
        }
        assert_eq!(got, pattern(0, size as usize));
        assert_eq!(p.copy(size, &mut out), Served::Eof);
        assert_eq!(p.tally.splits, 2);
    }
}
