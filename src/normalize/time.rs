//! Timestamps: every accepted value becomes a UTC instant; a naive value takes its source's zone.

use std::fmt;

use chrono::format::{Item, StrftimeItems};
use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;

/// A zone for naive timestamps: an IANA name (`Europe/Berlin`, with its DST rules) or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Iana(Tz),
    Fixed(FixedOffset),
}

impl Zone {
    /// `UTC`, an IANA name, or an offset `+02:00` / `-0530`.
    pub fn parse(text: &str) -> Option<Zone> {
        let t = text.trim();
        if t.starts_with('+') || t.starts_with('-') {
            let digits: String = t[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (h, m) = (
                digits[..2].parse::<i32>().ok()?,
                digits[2..].parse::<i32>().ok()?,
            );
            if h > 14 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            let secs = if t.starts_with('-') { -secs } else { secs };
            return FixedOffset::east_opt(secs).map(Zone::Fixed);
        }
        t.parse::<Tz>().ok().map(Zone::Iana)
    }

    /// The wall-clock time of an instant in this zone.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Iana(tz) => at.with_timezone(tz).naive_local(),
            Zone::Fixed(off) => at.with_timezone(off).naive_local(),
        }
    }

    /// The instant a local wall-clock time stands for; a DST gap or overlap is settled by `rule`.
    fn resolve(&self, local: NaiveDateTime, rule: DstRule) -> Result<DateTime<Utc>, TimeError> {
        let result = match self {
            Zone::Iana(tz) => tz
                .from_local_datetime(&local)
                .map(|d| d.with_timezone(&Utc)),
            Zone::Fixed(off) => off
                .from_local_datetime(&local)
                .map(|d| d.with_timezone(&Utc)),
        };
        match (result, rule) {
            (LocalResult::Single(at), _) => Ok(at),
            (LocalResult::None, DstRule::Reject) => Err(TimeError::Nonexistent),
            (LocalResult::Ambiguous(..), DstRule::Reject) => Err(TimeError::Ambiguous),
            (LocalResult::Ambiguous(a, b), DstRule::Earlier) => Ok(a.min(b)),
            (LocalResult::Ambiguous(a, b), DstRule::Later) => Ok(a.max(b)),
            (LocalResult::None, rule) => {
                // In a gap, read the wall time with the offsets in force just before and just after
                // the transition: the two readings are the candidate instants.
                let Zone::Iana(tz) = self else {
                    return Err(TimeError::Nonexistent);
                };
                let offset_at = |probe: NaiveDateTime| {
                    tz.offset_from_utc_datetime(&probe).fix().local_minus_utc() as i64
                };
                let (before, after) = (
                    offset_at(local - chrono::Duration::hours(12)),
                    offset_at(local + chrono::Duration::hours(12)),
                );
                let reading = |off: i64| local.and_utc() - chrono::Duration::seconds(off);
                let (x, y) = (reading(before), reading(after));
                Ok(if rule == DstRule::Earlier {
                    x.min(y)
                } else {
                    x.max(y)
                })
            }
        }
    }
}

/// What to do with a naive local time that a DST change makes ambiguous (it occurs twice) or
/// non-existent (the clock jumped over it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DstRule {
    /// Reject the row, saying why.
    #[default]
    Reject,
    /// Take the earlier of the two possible instants.
    Earlier,
    /// Take the later of the two possible instants.
    Later,
}

impl DstRule {
    pub fn parse(text: &str) -> Option<DstRule> {
        match text {
            "reject" => Some(DstRule::Reject),
            "earlier" => Some(DstRule::Earlier),
            "later" => Some(DstRule::Later),
            _ => None,
        }
    }
}

/// A parsed time: an instant, or a date that no zone may shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    At(DateTime<Utc>),
    Date(NaiveDate),
}

/// How a source writes its times.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeFormat {
    /// `2026-12-01T09:15:00+01:00` (a space instead of `T` is accepted); the offset is required.
    Rfc3339,
    /// Whole seconds since 1970-01-01T00:00:00Z.
    EpochSeconds,
    /// Whole milliseconds since 1970-01-01T00:00:00Z.
    EpochMillis,
    /// A strftime pattern with an offset (`%z`): needs no zone.
    WithOffset(String),
    /// A strftime pattern with a time of day and no offset: read in the source's zone.
    Naive(String),
    /// A strftime pattern with a date only: a business date as it stands, never shifted by a zone.
    Date(String),
}

impl TimeFormat {
    /// Reads a config `format` value; `Err` says what is wrong with the pattern.
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        match text {
            "rfc3339" => return Ok(TimeFormat::Rfc3339),
            "epoch_s" => return Ok(TimeFormat::EpochSeconds),
            "epoch_ms" => return Ok(TimeFormat::EpochMillis),
            _ => {}
        }
        let items: Vec<Item> = StrftimeItems::new(text).collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return Err(format!("{text:?} is not a valid strftime pattern"));
        }
        let has = |spec: &[&str]| spec.iter().any(|s| text.contains(s));
        if !has(&["%Y", "%y", "%C", "%F", "%D", "%x", "%s", "%c", "%+"]) {
            return Err(format!(
                "{text:?} has no date in it; use rfc3339, epoch_s, epoch_ms or a strftime pattern such as %Y-%m-%d %H:%M:%S"
            ));
        }
        if text.contains("%Z") {
            return Err(format!(
                "{text:?}: %Z (a zone name such as CET) is ambiguous and cannot be parsed; use %z (+01:00) or a timezone"
            ));
        }
        let format = if has(&["%z", "%:z", "%::z", "%#z", "%+", "%s"]) {
            TimeFormat::WithOffset(text.to_string())
        } else if has(&[
            "%H", "%I", "%k", "%l", "%M", "%S", "%T", "%R", "%X", "%r", "%c",
        ]) {
            TimeFormat::Naive(text.to_string())
        } else {
            TimeFormat::Date(text.to_string())
        };
        // A pattern is only useful if what it writes can be read back: `%Y` alone, or `%%Y`, cannot.
        let sample =
            DateTime::parse_from_rfc3339("2026-03-04T05:06:07+01:00").expect("valid sample");
        let written = sample.format(text).to_string();
        let zone = Zone::Fixed(FixedOffset::east_opt(3600).expect("valid offset"));
        if parse_time(&written, &format, Some(&zone), DstRule::Reject).is_err() {
            // An offset is only read with a time of day to apply it to.
            let need = match format {
                TimeFormat::WithOffset(_) => {
                    "it needs a full date and a time of day (%H:%M) with its offset"
                }
                _ => "it needs a full date",
            };
            return Err(format!(
                "{text:?} cannot be read back (a time written with it, {written:?}, does not parse): {need}"
            ));
        }
        Ok(format)
    }

    /// Whether values carry no zone of their own, so the source must name one.
    pub fn is_naive(&self) -> bool {
        matches!(self, TimeFormat::Naive(_))
    }
}

/// Why a time was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    Empty,
    Unparsable(String),
    Nonexistent,
    Ambiguous,
    OutOfRange,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Empty => write!(f, "empty time"),
            TimeError::Unparsable(expected) => write!(f, "not a time in the format {expected}"),
            TimeError::Nonexistent => write!(
                f,
                "local time does not exist in the source's zone (DST gap)"
            ),
            TimeError::Ambiguous => write!(
                f,
                "local time occurs twice in the source's zone (DST overlap)"
            ),
            // What RFC 3339 can write, and so the state file keep: a time beyond is nearly always
            // an epoch in the wrong unit (milliseconds read as seconds, say).
            TimeError::OutOfRange => write!(
                f,
                "time out of range: not within the years 0000 to 9999 (an epoch in the wrong unit?)"
            ),
        }
    }
}

/// RFC 3339 as exports write it (`2026-12-01T09:15:00.123+01:00`, `...Z`), read without chrono's
/// general parser, which took 3% of a run; `None` for anything else (a leap second, more than nine
/// fraction digits, a malformed value), which chrono then reads or rejects.
fn rfc3339_plain(t: &str, dates: &mut DateMemo) -> Option<DateTime<Utc>> {
    let b = t.as_bytes();
    // The date and time of day, `YYYY-MM-DDTHH:MM:SS`, at fixed places: read from a fixed-size
    // array, with no bounds checks.
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    let digit = |i: usize| u32::from(head[i].wrapping_sub(b'0'));
    const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
    let digits = DIGITS.iter().fold(true, |ok, &i| ok & (digit(i) < 10));
    let marks = head[4] == b'-' && head[7] == b'-' && head[13] == b':' && head[16] == b':';
    if !(digits && marks && matches!(head[10], b'T' | b't' | b' ')) {
        return None;
    }
    let two = |i: usize| digit(i) * 10 + digit(i + 1);
    let year = two(0) * 100 + two(2);
    let (month, day) = (two(5), two(8));
    let (hour, minute, second) = (two(11), two(14), two(17));
    let mut i = 19;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        for &c in &b[i + 1..i + 1 + digits] {
            nanos = nanos * 10 + u32::from(c - b'0');
        }
        nanos *= 10u32.pow(9 - digits as u32);
        i += 1 + digits;
    }
    // The offset's two numbers, checked as the head's were.
    let two = |i: usize| -> Option<u32> {
        let (x, y) = (
            b.get(i)?.wrapping_sub(b'0'),
            b.get(i + 1)?.wrapping_sub(b'0'),
        );
        (x < 10 && y < 10).then(|| u32::from(x) * 10 + u32::from(y))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        &sign @ (b'+' | b'-') if i + 6 == b.len() && at(i + 3, b':') => {
            let (h, m) = (two(i + 1)?, two(i + 4)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = (h * 3600 + m * 60) as i32;
            if sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // The UTC time of day, and the date, one day on or back where the offset crosses midnight
    // (an offset is less than a day).
    let ymd = (year as i32, month, day);
    let date = dates.get(ymd, || NaiveDate::from_ymd_opt(ymd.0, ymd.1, ymd.2))?;
    let secs = (hour * 3600 + minute * 60 + second) as i32 - offset;
    let (date, secs) = match secs {
        ..0 => (date.pred_opt()?, secs + 86_400),
        86_400.. => (date.succ_opt()?, secs - 86_400),
        _ => (date, secs),
    };
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs as u32, nanos)?;
    Some(date.and_time(time).and_utc())
}

/// The last calendar date [`rfc3339_plain`] built, by year, month and day: building one is a good
/// part of reading a time.
pub type DateMemo = super::Last<(i32, u32, u32), NaiveDate>;

/// Parses one time value. `zone` is required (checked at config time) for naive formats; `dst`
/// settles naive times that a DST change makes ambiguous or non-existent.
pub fn parse_time(
    text: &str,
    format: &TimeFormat,
    zone: Option<&Zone>,
    dst: DstRule,
) -> Result<Stamp, TimeError> {
    parse_time_with(text, format, zone, dst, &mut DateMemo::default())
}

/// [`parse_time`], remembering the last date built in `dates` (a loader keeps one per chunk).
pub fn parse_time_with(
    text: &str,
    format: &TimeFormat,
    zone: Option<&Zone>,
    dst: DstRule,
    dates: &mut DateMemo,
) -> Result<Stamp, TimeError> {
    let t = super::trim(text);
    if t.is_empty() {
        return Err(TimeError::Empty);
    }
    let zone = || zone.expect("naive time formats are validated to have a zone");
    let stamp = match format {
        TimeFormat::Rfc3339 => match rfc3339_plain(t, dates) {
            // Four digits of year: within range.
            Some(at) => return Ok(Stamp::At(at)),
            None => DateTime::parse_from_rfc3339(t)
                .map(|d| Stamp::At(d.with_timezone(&Utc)))
                .map_err(|_| {
                    TimeError::Unparsable("rfc3339 (e.g. 2026-12-01T09:15:00+01:00)".into())
                }),
        },
        TimeFormat::EpochSeconds | TimeFormat::EpochMillis => {
            let n: i64 = t.parse().map_err(|_| {
                TimeError::Unparsable(
                    if *format == TimeFormat::EpochSeconds {
                        "epoch_s"
                    } else {
                        "epoch_ms"
                    }
                    .into(),
                )
            })?;
            let at = if *format == TimeFormat::EpochSeconds {
                DateTime::from_timestamp(n, 0)
            } else {
                DateTime::from_timestamp_millis(n)
            };
            at.map(Stamp::At).ok_or(TimeError::OutOfRange)
        }
        TimeFormat::WithOffset(p) => DateTime::parse_from_str(t, p)
            .map(|d| Stamp::At(d.with_timezone(&Utc)))
            .map_err(|_| TimeError::Unparsable(p.clone())),
        TimeFormat::Naive(p) => {
            let local = NaiveDateTime::parse_from_str(t, p)
                .map_err(|_| TimeError::Unparsable(p.clone()))?;
            zone().resolve(local, dst).map(Stamp::At)
        }
        TimeFormat::Date(p) => NaiveDate::parse_from_str(t, p)
            .map(Stamp::Date)
            .map_err(|_| TimeError::Unparsable(p.clone())),
    }?;
    let year = match stamp {
        Stamp::At(at) => at.year(),
        Stamp::Date(d) => d.year(),
    };
    match (0..=9999).contains(&year) {
        true => Ok(stamp),
        false => Err(TimeError::OutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What chrono makes of an RFC 3339 value, in UTC.
    fn chrono_reads(t: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    #[test]
    fn plain_rfc3339_reads_what_chrono_reads_and_leaves_it_the_rest() {
        let read = [
            "2026-12-01T09:15:00Z",
            "2026-12-01t09:15:00z",
            "2026-12-01 09:15:00+01:00",
            "2024-01-01T01:00:01.959+01:00",
            "2024-02-29T23:59:59.123456789-12:00",
            "0000-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.5-00:00",
        ];
        for t in read {
            assert_eq!(
                rfc3339_plain(t, &mut DateMemo::default()),
                chrono_reads(t),
                "{t}"
            );
            assert!(rfc3339_plain(t, &mut DateMemo::default()).is_some(), "{t}");
        }
        let left = [
            "2026-12-01T23:59:60Z",
            "2026-12-01T09:15:00.1234567891Z",
            "2026-12-01T09:15:00.Z",
            "2026-12-01T09:15:00",
            "2026-12-01T09:15:00+0100",
            "2026-12-01T09:15:00+01:00 ",
            "2026-02-30T09:15:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T09:15:00+24:00",
            "+2026-12-01T09:15:00Z",
            "2026-12-01",
            "",
        ];
        for t in left {
            assert_eq!(rfc3339_plain(t, &mut DateMemo::default()), None, "{t}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config(5_000, "tests/time.proptest-regressions"))]
        #[test]
        fn plain_rfc3339_never_disagrees_with_chrono(
            values in prop::collection::vec(
                "[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?([Zz]|[+-][0-2][0-9]:[0-6][0-9])",
                1..4,
            ),
            again in any::<bool>(),
        ) {
            // One memo across the values, as a loader reads a file's; with `again`, each also
            // on the first value's date (another time and offset) and in its year (another date).
            let mut dates = DateMemo::default();
            let mut all = values.clone();
            if again {
                let base = values[0].clone();
                for cut in [10, 5] {
                    all.extend(values.iter().map(|v| format!("{}{}", &base[..cut], &v[cut..])));
                }
            }
            for t in &all {
                if let Some(at) = rfc3339_plain(t, &mut dates) {
                    prop_assert_eq!(Some(at), chrono_reads(t), "{}", t);
                } else {
                    // Left to chrono: only values it rejects or reads specially (leap seconds,
                    // long fractions).
                    let digits = t.split('.').nth(1).map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
                    let special = t.contains(":60") || digits > 9;
                    prop_assert!(chrono_reads(t).is_none() || special, "{}", t);
                }
            }
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_to_utc() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let utc_zone = Zone::parse("UTC").unwrap();
        let f = |s: &str| TimeFormat::parse(s).unwrap();
        let cases: &[(&str, TimeFormat, Option<&Zone>, &str)] = &[
            (
                "2026-12-01T09:15:00+01:00",
                TimeFormat::Rfc3339,
                None,
                "2026-12-01T08:15:00Z",
            ),
            (
                "2026-12-01 09:15:00Z",
                TimeFormat::Rfc3339,
                None,
                "2026-12-01T09:15:00Z",
            ),
            (
                "2026-12-01T23:59:59.999-12:00",
                TimeFormat::Rfc3339,
                None,
                "2026-12-02T11:59:59.999Z",
            ),
            (
                "1764580500",
                TimeFormat::EpochSeconds,
                None,
                "2025-12-01T09:15:00Z",
            ),
            (
                "1764580500123",
                TimeFormat::EpochMillis,
                None,
                "2025-12-01T09:15:00.123Z",
            ),
            (
                "01.12.2026 09:15:00",
                f("%d.%m.%Y %H:%M:%S"),
                Some(&berlin),
                "2026-12-01T08:15:00Z",
            ),
            (
                "01.07.2026 09:15:00",
                f("%d.%m.%Y %H:%M:%S"),
                Some(&berlin),
                "2026-07-01T07:15:00Z",
            ),
            (
                "2021-02-18 14:07:57",
                f("%Y-%m-%d %H:%M:%S"),
                Some(&utc_zone),
                "2021-02-18T14:07:57Z",
            ),
            (
                "2026-12-01 09:15 +0530",
                f("%Y-%m-%d %H:%M %z"),
                None,
                "2026-12-01T03:45:00Z",
            ),
        ];
        for (text, format, zone, want) in cases {
            assert_eq!(
                parse_time(text, format, *zone, DstRule::Reject),
                Ok(Stamp::At(utc(want))),
                "{text:?} {format:?}"
            );
        }
    }

    #[test]
    fn rejects_with_reason() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let naive = TimeFormat::parse("%Y-%m-%d %H:%M:%S").unwrap();
        let date = TimeFormat::parse("%Y-%m-%d").unwrap();
        assert_eq!(
            parse_time(
                "2026-03-29 02:30:00",
                &naive,
                Some(&berlin),
                DstRule::Reject
            ),
            Err(TimeError::Nonexistent)
        );
        assert_eq!(
            parse_time(
                "2026-10-25 02:30:00",
                &naive,
                Some(&berlin),
                DstRule::Reject
            ),
            Err(TimeError::Ambiguous)
        );
        assert!(matches!(
            parse_time("2026-02-30", &date, None, DstRule::Reject),
            Err(TimeError::Unparsable(_))
        ));
        assert!(matches!(
            parse_time(
                "2026-12-01T09:15:00",
                &TimeFormat::Rfc3339,
                None,
                DstRule::Reject
            ),
            Err(TimeError::Unparsable(_))
        ));
        assert!(matches!(
            parse_time("12/01/26", &date, None, DstRule::Reject),
            Err(TimeError::Unparsable(_))
        ));
        assert!(matches!(
            parse_time("17e8", &TimeFormat::EpochSeconds, None, DstRule::Reject),
            Err(TimeError::Unparsable(_))
        ));
        assert_eq!(
            parse_time("", &TimeFormat::Rfc3339, None, DstRule::Reject),
            Err(TimeError::Empty)
        );
        assert_eq!(
            parse_time(
                "99999999999999999",
                &TimeFormat::EpochSeconds,
                None,
                DstRule::Reject
            ),
            Err(TimeError::OutOfRange)
        );
    }

    #[test]
    fn a_pattern_that_cannot_read_back_what_it_writes_says_what_it_lacks() {
        let err = TimeFormat::parse("%Y-%m-%d%z").unwrap_err();
        assert!(
            err.ends_with(
                "does not parse): it needs a full date and a time of day (%H:%M) with its offset"
            ),
            "{err}"
        );
        let err = TimeFormat::parse("%Y-%m").unwrap_err();
        assert!(
            err.ends_with("does not parse): it needs a full date"),
            "{err}"
        );
        assert!(TimeFormat::parse("%Y-%m-%d %H:%M%z").is_ok());
    }

    #[test]
    fn times_beyond_the_years_rfc3339_writes_are_out_of_range() {
        let out = |t: &str, f: &str| {
            let format = TimeFormat::parse(f).unwrap();
            let utc = Zone::parse("UTC").unwrap();
            parse_time(t, &format, Some(&utc), DstRule::Reject)
        };
        // Milliseconds read as seconds: year 58886.
        assert_eq!(out("1796112000000", "epoch_s"), Err(TimeError::OutOfRange));
        assert_eq!(
            out("-99999999999999", "epoch_ms"),
            Err(TimeError::OutOfRange)
        );
        // strftime patterns read four digits of year (or chrono refuses the value).
        assert!(out("12345-01-02", "%Y-%m-%d").is_err());
        assert!(out("-0001-01-02 00:00:00", "%Y-%m-%d %H:%M:%S").is_err());
        // The last second of 9999 and the first of year 0 are in range.
        let last = out("253402300799", "epoch_s").unwrap();
        assert_eq!(last, Stamp::At("9999-12-31T23:59:59Z".parse().unwrap()));
        assert!(out("-62167219200000", "epoch_ms").is_ok());
        assert!(out("1796112000", "epoch_s").is_ok());
        assert!(
            TimeError::OutOfRange
                .to_string()
                .contains("not within the years 0000 to 9999")
        );
    }

    #[test]
    fn dst_rules_settle_gaps_and_overlaps() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let naive = TimeFormat::parse("%Y-%m-%d %H:%M:%S").unwrap();
        let at = |text: &str, rule| parse_time(text, &naive, Some(&berlin), rule);
        // 25 Oct 2026, 02:30 happens twice: first in CEST (00:30Z), then in CET (01:30Z).
        let overlap = "2026-10-25 02:30:00";
        assert_eq!(
            at(overlap, DstRule::Earlier),
            Ok(Stamp::At(utc("2026-10-25T00:30:00Z")))
        );
        assert_eq!(
            at(overlap, DstRule::Later),
            Ok(Stamp::At(utc("2026-10-25T01:30:00Z")))
        );
        // 29 Mar 2026, 02:30 never happens: read with CET it is 01:30Z, with CEST 00:30Z.
        let gap = "2026-03-29 02:30:00";
        assert_eq!(
            at(gap, DstRule::Earlier),
            Ok(Stamp::At(utc("2026-03-29T00:30:00Z")))
        );
        assert_eq!(
            at(gap, DstRule::Later),
            Ok(Stamp::At(utc("2026-03-29T01:30:00Z")))
        );
        // Unambiguous times are the same under every rule.
        for rule in [DstRule::Reject, DstRule::Earlier, DstRule::Later] {
            assert_eq!(
                at("2026-10-25 03:30:00", rule),
                Ok(Stamp::At(utc("2026-10-25T02:30:00Z")))
            );
        }
        // A date is a date: no zone shifts it.
        let date = TimeFormat::parse("%Y-%m-%d").unwrap();
        assert!(!date.is_naive());
        assert_eq!(
            parse_time("2026-12-01", &date, None, DstRule::Reject),
            Ok(Stamp::Date(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()))
        );
    }

    #[test]
    fn formats_and_zones_from_config() {
        assert_eq!(
            TimeFormat::parse("%Y-%m-%d").unwrap(),
            TimeFormat::Date("%Y-%m-%d".into())
        );
        assert!(TimeFormat::parse("%d.%m.%Y %H:%M").unwrap().is_naive());
        assert!(!TimeFormat::parse("%Y-%m-%dT%H:%M:%S%z").unwrap().is_naive());
        assert!(TimeFormat::parse("%H:%M").is_err());
        assert!(TimeFormat::parse("%Y").is_err());
        assert!(TimeFormat::parse("%%Y-%m-%d").is_err());
        assert!(TimeFormat::parse("%Y-%m-%d %H:%M %Z").is_err());
        assert_eq!(Zone::parse("+00:99"), None);
        assert!(TimeFormat::parse("%Y-%Q").is_err());
        assert_eq!(
            Zone::parse("-05:30"),
            Some(Zone::Fixed(FixedOffset::west_opt(5 * 3600 + 1800).unwrap()))
        );
        assert_eq!(Zone::parse("Mars/Olympus"), None);
        assert_eq!(Zone::parse("+2"), None);
    }
}
