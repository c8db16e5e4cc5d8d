//! Windows "MS-DOS style" lines, as IIS (and servers imitating it) answer `LIST`:
//!
//! ```text
//! 01-02-21  10:30AM       <DIR>          Program Files      (IIS default)
//! 12-31-2020  11:59PM            1,234,567 report.pdf      (FourDigitYears, sizes with commas)
//! 12-31-2020  23:59                   42 log.txt           (a 24-hour clock)
//! 2020-12-31  23:59       <DIR>          archive           (ISO dates)
//! ```
//!
//! Dates are month-day-year (or ISO year-month-day); two-digit years 70–99 are the 1900s, as
//! IIS and the DOS tools mean them. The columns are padded, so the name starts at the fourth
//! token: a leading space in a name cannot be told from the padding and is lost. DOS listings
//! carry no permissions.

use super::parse_size;
use super::time::civil_to_time;
use super::tokens;
use crate::remote::{valid_name, Kind, RemoteEntry};

pub(super) fn parse_dos_line(line: &str) -> Option<RemoteEntry> {
    let toks = tokens(line);
    if toks.len() < 4 {
        return None;
    }
    let tok = |i: usize| &line[toks[i].0..toks[i].1];
    let mut date = tok(0).split(['-', '/', '.']);
    let (a, b, c) = (date.next()?, date.next()?, date.next()?);
    if date.next().is_some() {
        return None;
    }
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, a, b) };
    let (month, day, mut year) = (
        m.parse::<u32>().ok()?,
        d.parse::<u32>().ok()?,
        y.parse::<i64>().ok()?,
    );
    match y.len() {
        2 => year += if year >= 70 { 1900 } else { 2000 },
        4 => {}
        _ => return None,
    }
    let time = tok(1).to_ascii_uppercase();
    let (clock, pm) = if let Some(t) = time.strip_suffix("PM") {
        (t, Some(true))
    } else if let Some(t) = time.strip_suffix("AM") {
        (t, Some(false))
    } else {
        (time.as_str(), None)
    };
    let (h, min) = clock.split_once(':')?;
    let (mut hour, minute) = (h.parse::<u32>().ok()?, min.parse::<u32>().ok()?);
    match pm {
        Some(_) if !(1..=12).contains(&hour) => return None,
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let mtime = civil_to_time(year, month, day, hour, minute, 0)?;
    let (kind, size) = if tok(2).eq_ignore_ascii_case("<DIR>") {
        (Kind::Dir, 0)
    } else {
        let digits = tok(2).replace(',', "");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (Kind::File, parse_size(&digits)?)
    };
    let name = &line[toks[3].0..];
    if !valid_name(name) {
        return None;
    }
    Some(RemoteEntry {
        name: name.to_string(),
        kind,
        size,
        mtime: Some(mtime),
        mode: None,
        link_target: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_list_line;
    use super::super::time::at;
    use super::*;

    #[test]
    fn dos_list_lines() {
        let now = at(2024, 6, 15, 12, 0, 0);
        let e =
            parse_list_line("01-02-21  10:30AM       <DIR>          Program Files", now).unwrap();
        assert_eq!((e.name.as_str(), e.kind), ("Program Files", Kind::Dir));
        assert_eq!(e.mtime, Some(at(2021, 1, 2, 10, 30, 0)));
        let e =
            parse_list_line("12-31-2020  11:59PM            1,234,567 report.pdf", now).unwrap();
        assert_eq!((e.size, e.kind), (1_234_567, Kind::File));
        assert_eq!(e.mtime, Some(at(2020, 12, 31, 23, 59, 0)));
        let e = parse_list_line("07-04-99  12:05AM  12 old.txt", now).unwrap();
        assert_eq!(e.mtime, Some(at(1999, 7, 4, 0, 5, 0)));
        assert_eq!(parse_list_line("13-45-2020  11:59PM 1 bad", now), None);
    }

    #[test]
    fn dos_variants_two_and_four_digit_years_both_clocks_iso_dates() {
        let now = at(2024, 6, 15, 12, 0, 0);
        let e = parse_list_line("12-31-20  01:02PM <DIR> name", now).unwrap();
        assert_eq!((e.name.as_str(), e.kind), ("name", Kind::Dir));
        assert_eq!(e.mtime, Some(at(2020, 12, 31, 13, 2, 0)));
        let e = parse_list_line("12-31-2020  23:59                   42 log.txt", now).unwrap();
        assert_eq!((e.size, e.mtime), (42, Some(at(2020, 12, 31, 23, 59, 0))));
        let e = parse_list_line("12-31-2020  12:00PM  0 noon", now).unwrap();
        assert_eq!(e.mtime, Some(at(2020, 12, 31, 12, 0, 0)));
        let e = parse_list_line("2020-12-31  00:01       <DIR>          archive", now).unwrap();
        assert_eq!(
            (e.kind, e.mtime),
            (Kind::Dir, Some(at(2020, 12, 31, 0, 1, 0)))
        );
        // Names keep their inner spaces.
        let e = parse_list_line("08-07-15  07:50PM  718 a  b c", now).unwrap();
        assert_eq!((e.name.as_str(), e.size), ("a  b c", 718));
    }

    #[test]
    fn dos_lines_with_bad_columns_are_skipped() {
        let now = at(2024, 6, 15, 12, 0, 0);
        for line in [
            "12-31-2020  13:00PM  1 thirteen-pm",
            "12-31-2020  00:00AM  1 zero-am",
            "12-31-2020  11:59PM  1,2x3 badsize",
            "12-31-2020  11:59PM  , commas",
            "12-31-2020  11:59PM  -1 negative",
            "12-31-202  11:59PM  1 threedigityear",
            "12-31-2020-1  11:59PM  1 fourparts",
            "12-31-2020  11:59PM  <DIR> ..",
            "12-31-2020  11:59PM  <DIR>",
            "12-31-2020  11:59PM  99999999999999999999 huge",
        ] {
            assert_eq!(parse_list_line(line, now), None, "{line:?}");
        }
    }
}
