//! Dates in listings: MLSD's `YYYYMMDDHHMMSS` (also MDTM's and MFMT's), `ls`'s `Mon DD HH:MM`
//! and `Mon DD YYYY`, and plain civil dates, turned into `SystemTime` without a date crate.
//!
//! Every listing date is taken as UTC: MLSD's are by definition, and for LIST the server's
//! zone is unknown (MDTM corrects LIST's times afterwards where the server offers it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYYMMDDHHMMSS[.sss]`, UTC (MLSD's `modify` fact, and `MDTM` replies).
pub fn parse_mlsd_time(s: &str) -> Option<SystemTime> {
    let (main, frac) = s.split_once('.').unwrap_or((s, ""));
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| main[r].parse::<u32>().ok();
    let t = civil_to_time(
        i64::from(num(0..4)?),
        num(4..6)?,
        num(6..8)?,
        num(8..10)?,
        num(10..12)?,
        num(12..14)?,
    )?;
    let millis = frac
        .get(..frac.len().min(3))
        .and_then(|f| format!("{f:0<3}").parse::<u64>().ok())
        .unwrap_or(0);
    Some(t + Duration::from_millis(millis))
}

/// `YYYYMMDDHHMMSS` in UTC, as MFMT and MDTM take it.
pub fn format_ftp_time(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `Jan`…`Dec`, any case → 1…12.
pub(super) fn month_number(s: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if s.len() != 3 {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .map(|i| i as u32 + 1)
}

/// `HH:MM` (year-less, recent) or `YYYY` (older files) in a unix listing. A year-less date
/// that would lie more than a day in the future belongs to the previous year, as `ls` means.
pub(super) fn unix_list_time(
    month: u32,
    day: u32,
    when: &str,
    now: SystemTime,
) -> Option<SystemTime> {
    if let Some((h, m)) = when.split_once(':') {
        let (hour, minute) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        let this_year = civil_from_days(days_since_epoch(now)).0;
        let t = civil_to_time(this_year, month, day, hour, minute, 0)?;
        if t > now + Duration::from_secs(86_400) {
            civil_to_time(this_year - 1, month, day, hour, minute, 0)
        } else {
            Some(t)
        }
    } else if when.len() == 4 && when.bytes().all(|b| b.is_ascii_digit()) {
        civil_to_time(when.parse().ok()?, month, day, 0, 0, 0)
    } else {
        None
    }
}

/// `HH:MM` or `HH:MM:SS`, 24-hour → (hour, minute, second).
pub(super) fn clock(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let sec = match parts.next() {
        Some(sec) => sec.parse().ok()?,
        None => 0,
    };
    parts.next().is_none().then_some((h, m, sec))
}

/// Seconds since the epoch (EPLF's `m` fact), within what `SystemTime` and a civil date hold.
pub(super) fn from_unix_seconds(secs: i64) -> Option<SystemTime> {
    // Years 1 to 9999, as for every other date here (and `abs` of i64::MIN would overflow).
    const MIN: i64 = -62_135_596_800;
    const MAX: i64 = 253_402_300_799;
    if !(MIN..=MAX).contains(&secs) {
        return None;
    }
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

fn days_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A UTC civil date and time; `None` when a field is out of range (years 1…9999).
pub(super) fn civil_to_time(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
) -> Option<SystemTime> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
        || !(1..=9999).contains(&year)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    from_unix_seconds(days * 86_400 + i64::from(hour * 3600 + min * 60 + sec))
}

#[cfg(test)]
pub(super) fn at(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
    civil_to_time(y, mo, d, h, mi, s).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftp_times_format_as_mfmt_wants_them() {
        assert_eq!(format_ftp_time(at(2024, 1, 2, 3, 4, 5)), "20240102030405");
        assert_eq!(
            parse_mlsd_time(&format_ftp_time(at(1999, 12, 31, 23, 59, 59))),
            Some(at(1999, 12, 31, 23, 59, 59))
        );
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            at(2000, 3, 1, 0, 0, 0),
            UNIX_EPOCH + Duration::from_secs(951_868_800)
        );
    }

    #[test]
    fn unix_seconds_beyond_year_9999_are_refused() {
        assert_eq!(from_unix_seconds(0), Some(UNIX_EPOCH));
        assert_eq!(from_unix_seconds(i64::MAX), None);
        assert_eq!(from_unix_seconds(i64::MIN), None);
    }
}
