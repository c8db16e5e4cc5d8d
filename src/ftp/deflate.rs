//! `MODE Z`: transfers compressed with deflate on the data connection.
//!
//! On a slow link a text file, a log or a database dump comes down several times faster
//! compressed. Servers that offer it (proftpd's mod_deflate, some others) list `MODE Z` in
//! `FEAT`; the data connection then carries one zlib stream (RFC 1950) of the file's bytes.
//! What it costs: CPU on both ends (zlib runs at tens of MB/s), and nothing on a file that
//! does not compress, beyond that CPU. So:
//!
//! - `-o compress=on` uses it for every download that starts at byte 0; `off` never;
//!   `auto` (the default) only once a plain download of at least [`MEASURE_MIN`] bytes came
//!   slower than [`SLOW`] bytes per second, and for as long as the last such measurement
//!   says so (transfers in `MODE Z` are not measured: their rate is the data's, not the
//!   link's). Before any measurement, `auto` is off.
//! - A download that starts elsewhere (a random read, a resumed transfer) is `MODE S`: the
//!   meaning of `REST` under `MODE Z` is not agreed between servers, and a wrong byte is
//!   worse than a slower read.
//! - Uploads of whole files of at least [`UPLOAD_MIN`] bytes are compressed by the same
//!   rule (level 1: the link is what is short) when their first 64 KiB shrink by a tenth or
//!   more ([`worth_compressing`]), and verified: Debian 12's proftpd 1.3.8 mod_deflate corrupts, truncates or
//!   aborts `MODE Z` uploads while often still answering `226` (proftpd bug #1896, fixed
//!   upstream in #1902; lftp and plain zlib clients hit it too). After the reply, `SIZE`
//!   must give the number of bytes sent. An upload that fails, or whose size differs, or
//!   cannot be checked, is sent again at once in `MODE S`, and so are all later uploads
//!   of the mount (one warning). The check is made before the caller renames a
//!   temporary upload into place, so a replaced file is never left corrupt; a new file is
//!   overwritten by the plain upload. Appends and uploads streamed while a file is written
//!   are always plain (a compressed stream to that proftpd stalled rather than failed).
//! - `MODE` is state of the control connection, and every other transfer on it (listings,
//!   appends, reads at an offset) expects `MODE S`. A connection is switched to `MODE Z`
//!   right before its `RETR` or `STOR` and back to `MODE S` when that transfer ends; one that cannot be switched back,
//!   or is returned to the pool still in `MODE Z` for any reason, is closed rather than
//!   reused (see the pool's `Lease`).
//! - The compressed stream must end properly (zlib's own end marker and checksum): a data
//!   connection that closes before it is an error, never a short file.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use flate2::{Decompress, FlushDecompress, Status};

/// Below this many bytes per second a link counts as slow for `compress=auto`.
pub const SLOW: u64 = 8 * 1024 * 1024;
/// The smallest plain download whose rate is taken as the link's.
pub const MEASURE_MIN: u64 = 1024 * 1024;

/// The smallest upload sent in `MODE Z`.
pub const UPLOAD_MIN: u64 = 64 * 1024;

/// How much of an upload is compressed as a sample before choosing `MODE Z` for it.
const SAMPLE: usize = 64 * 1024;

/// Whether `sample` (the start of an upload) shrinks to at most 90% compressed. Random,
/// already compressed or encrypted data does not: sent in `MODE Z` it costs CPU on both
/// ends for nothing, and Debian 12's proftpd took 80 s to take 3 MiB of it (it reads such a
/// stream a kilobyte at a time), where the plain upload takes milliseconds.
pub fn worth_compressing(sample: &[u8]) -> bool {
    let mut z = Deflater::default();
    let mut out = Vec::with_capacity(sample.len());
    if z.write(sample, &mut out)
        .and_then(|()| z.finish(&mut out))
        .is_err()
    {
        return false;
    }
    out.len() * 10 <= sample.len() * 9
}

/// The first bytes of the upload of `len` bytes at `offset` of `file`, for
/// [`worth_compressing`]; empty if they cannot be read (the upload will say why).
pub fn sample_of(file: &std::fs::File, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; SAMPLE.min(len as usize)];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => buf,
        Err(_) => Vec::new(),
    }
}

/// `-o compress=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compress {
    Off,
    On,
    /// On when offered and the link measured slow (see the module docs).
    #[default]
    Auto,
}

/// What this mount knows about compressing: the user's choice, the link's measured rate,
/// and whether the server refused `MODE Z` although it offered it.
#[derive(Debug, Default)]
pub struct Deflate {
    mode: AtomicU8,
    /// Bytes per second of the last plain download of at least [`MEASURE_MIN`]; 0: none yet.
    rate: AtomicU64,
    refused: AtomicBool,
    /// A `MODE Z` upload came out wrong or could not be verified: uploads are plain.
    uploads_broken: AtomicBool,
}

impl Deflate {
    pub fn set(&self, c: Compress) {
        let v = match c {
            Compress::Auto => 0,
            Compress::Off => 1,
            Compress::On => 2,
        };
        self.mode.store(v, Ordering::Relaxed);
    }

    pub fn mode(&self) -> Compress {
        match self.mode.load(Ordering::Relaxed) {
            1 => Compress::Off,
            2 => Compress::On,
            _ => Compress::Auto,
        }
    }

    /// Whether a download from byte 0 should use `MODE Z` on a server that offers it.
    pub fn wanted(&self) -> bool {
        if self.refused.load(Ordering::Relaxed) {
            return false;
        }
        match self.mode() {
            Compress::Off => false,
            Compress::On => true,
            Compress::Auto => {
                let rate = self.rate.load(Ordering::Relaxed);
                rate != 0 && rate < SLOW
            }
        }
    }

    /// Whether a whole-file upload should use `MODE Z` (same rule, until one failed).
    pub fn upload_wanted(&self) -> bool {
        !self.uploads_broken.load(Ordering::Relaxed) && self.wanted()
    }

    /// A `MODE Z` upload failed or came out wrong: warned once, plain from now on.
    pub fn upload_failed(&self, server: &str, why: &str) {
        if !self.uploads_broken.swap(true, Ordering::Relaxed) {
            log::warn!(
                "{server}: an upload in MODE Z failed its check ({why}); it is sent again \
                 uncompressed, as are all uploads during this mount"
            );
        } else {
            log::debug!("MODE Z upload failed: {why}");
        }
    }

    /// A plain download moved `bytes` in `took`. Small ones say more about round trips
    /// than about the link and are not counted.
    pub fn measured(&self, bytes: u64, took: Duration) {
        if bytes < MEASURE_MIN {
            return;
        }
        let rate = (bytes as f64 / took.as_secs_f64().max(1e-6)).min(u64::MAX as f64) as u64;
        let before = self.rate.swap(rate.max(1), Ordering::Relaxed);
        if self.mode() == Compress::Auto && (before == 0 || before < SLOW) != (rate < SLOW) {
            log::info!(
                "downloads measured at {:.1} MB/s: compression (MODE Z, where offered) {}",
                rate as f64 / 1e6,
                if rate < SLOW { "on" } else { "off" }
            );
        }
    }

    /// The server offered `MODE Z` and then refused it: not asked again.
    pub fn refused(&self, why: &str) {
        if !self.refused.swap(true, Ordering::Relaxed) {
            log::info!("the server refused MODE Z ({why}); transfers are not compressed");
        }
    }
}

/// Switches the leased connection to `MODE Z` (`on`) or back to `MODE S`; says whether it
/// worked. A refused `MODE Z` is learned; a connection that cannot go back to `MODE S` is
/// marked broken, so no later transfer runs on it in the wrong mode.
pub fn to_mode(lease: &mut super::pool::Lease, on: bool) -> bool {
    let cmd = if on { "MODE Z" } else { "MODE S" };
    // Each wait is bounded by the socket timeouts; the lease's deadline may be long past
    // after a long transfer.
    let r = lease.run_unbounded(|c| {
        // A data connection opened before may carry the old mode on a server that fixes
        // it when accepting (see `super::prepare`).
        c.ftp.drop_prepared_data_connection();
        c.ftp
            .custom_command(cmd, &[suppaftp::Status::CommandOk])
            .map_err(|e| crate::error::Error::from_ftp(crate::error::Op::Store, e))?;
        c.mode_z = on;
        Ok(())
    });
    match r {
        Ok(()) => true,
        Err(e) if on && matches!(e, crate::error::Error::Reply { .. }) => {
            lease.pool_info().deflate.refused(&e.to_string());
            false
        }
        Err(e) => {
            log::debug!("{cmd} failed ({e}); connection closed");
            lease.mark_broken();
            false
        }
    }
}

/// Deflates an upload on its way to the data connection: one zlib stream, fast level (the
/// link is the bottleneck this is for; level 1 costs a fraction of the CPU of level 6).
pub struct Deflater {
    z: flate2::Compress,
    out: Box<[u8]>,
}

impl Default for Deflater {
    fn default() -> Deflater {
        Deflater {
            z: flate2::Compress::new(flate2::Compression::fast(), true),
            out: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }
}

impl Deflater {
    /// Compresses `data` into `to`.
    pub fn write(&mut self, data: &[u8], to: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut rest = data;
        // Bounded: each turn takes input or makes output, or fails.
        while !rest.is_empty() {
            let (used, made, _) = self.step(rest, flate2::FlushCompress::None)?;
            to.write_all(&self.out[..made])?;
            rest = &rest[used..];
        }
        Ok(())
    }

    /// Ends the stream (what is buffered, the end marker, the checksum) into `to`.
    pub fn finish(&mut self, to: &mut impl std::io::Write) -> std::io::Result<()> {
        loop {
            let (_, made, status) = self.step(&[], flate2::FlushCompress::Finish)?;
            to.write_all(&self.out[..made])?;
            if status == Status::StreamEnd {
                return Ok(());
            }
        }
    }

    fn step(
        &mut self,
        input: &[u8],
        flush: flate2::FlushCompress,
    ) -> std::io::Result<(usize, usize, Status)> {
        let (in0, out0) = (self.z.total_in(), self.z.total_out());
        let status = self
            .z
            .compress(input, &mut self.out, flush)
            .map_err(std::io::Error::other)?;
        let used = (self.z.total_in() - in0) as usize;
        let made = (self.z.total_out() - out0) as usize;
        if used == 0 && made == 0 && status != Status::StreamEnd {
            return Err(std::io::Error::other("compression made no progress"));
        }
        Ok((used, made, status))
    }
}

/// The file's bytes out of a zlib stream read from `inner`, which ends only at the stream's
/// own end marker: if `inner` ends first, the read fails.
pub struct Inflate<R> {
    inner: R,
    z: Decompress,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// `inner` has ended; what the decompressor still holds may yet come out.
    eof: bool,
    done: bool,
}

impl<R: Read> Inflate<R> {
    pub fn new(inner: R) -> Inflate<R> {
        Inflate {
            inner,
            z: Decompress::new(true),
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            done: false,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // Bounded: each turn consumes input, produces output (and returns), or reads more
        // input; once the input has ended, a turn that produces nothing returns.
        loop {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                let n = self.inner.read(&mut self.buf)?;
                self.eof = n == 0;
                self.start = 0;
                self.end = n;
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(&self.buf[self.start..self.end], out, FlushDecompress::None)
                .map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("corrupt compressed data: {e}"),
                    )
                })?;
            let used = (self.z.total_in() - in0) as usize;
            let made = (self.z.total_out() - out0) as usize;
            self.start += used;
            if status == Status::StreamEnd {
                self.done = true;
            }
            if made > 0 {
                return Ok(made);
            }
            if self.done {
                return Ok(0);
            }
            if self.eof {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "compressed data ended before its end marker",
                ));
            }
            if used == 0 && self.start < self.end {
                // Input waiting and nothing taken: only a full output could explain it,
                // and `out` is not empty.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "compressed data made no progress",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn only_uploads_that_shrink_are_worth_compressing() {
        assert!(worth_compressing(&sample()[..64 * 1024]));
        // Incompressible: a xorshift stream.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!worth_compressing(&random));
        assert!(!worth_compressing(&[]));
    }

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn inflate_returns_the_bytes_in_small_reads() {
        let data = sample();
        let z = zlib(&data);
        let mut r = Inflate::new(&z[..]);
        let mut got = Vec::new();
        let mut piece = [0u8; 1000];
        loop {
            let n = r.read(&mut piece).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, data);
    }

    #[test]
    fn deflater_output_inflates_to_the_input() {
        let data = sample();
        let mut z = Vec::new();
        let mut d = Deflater::default();
        for piece in data.chunks(70_000) {
            d.write(piece, &mut z).unwrap();
        }
        d.finish(&mut z).unwrap();
        assert!(z.len() < data.len() / 4);
        let mut got = Vec::new();
        Inflate::new(&z[..]).read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn a_stream_cut_short_is_an_error_not_a_short_file() {
        let z = zlib(&sample());
        let mut got = Vec::new();
        let e = Inflate::new(&z[..z.len() - 10])
            .read_to_end(&mut got)
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut got = Vec::new();
        let garbage = vec![0x55u8; 1000];
        assert!(Inflate::new(&garbage[..]).read_to_end(&mut got).is_err());
    }

    #[test]
    fn auto_turns_on_below_the_slow_rate_and_off_above_it() {
        let d = Deflate::default();
        assert!(!d.wanted(), "nothing measured yet");
        d.measured(100, Duration::from_secs(10));
        assert!(!d.wanted(), "too small to count");
        d.measured(4 << 20, Duration::from_secs(2));
        assert!(d.wanted());
        d.measured(100 << 20, Duration::from_secs(1));
        assert!(!d.wanted());
        d.set(Compress::On);
        assert!(d.wanted());
        d.refused("502");
        assert!(!d.wanted());
        d.set(Compress::Off);
        assert!(!d.wanted());
    }
}
