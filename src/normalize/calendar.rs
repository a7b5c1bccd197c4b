//! The business calendar: which business day an instant belongs to (the run's zone and cut-off),
//! settlement windows in calendar or business days, and `{date}` templates in source paths.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};

use super::time::Zone;

/// How instants become business dates: day D ends at `cutoff` (local time in `zone`) on D; with a
/// cut-off of 00:00 it ends at midnight, so D is simply the local calendar date.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessDay {
    pub zone: Zone,
    pub cutoff: NaiveTime,
}

impl Default for BusinessDay {
    fn default() -> Self {
        BusinessDay {
            zone: Zone::Fixed(chrono::FixedOffset::east_opt(0).expect("UTC")),
            cutoff: NaiveTime::MIN,
        }
    }
}

impl BusinessDay {
    /// The business date of an instant. A record exactly at the cut-off belongs to the next day.
    pub fn date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        let local = self.zone.local(at);
        let d = self.by_wall_clock(local);
        if matches!(self.zone, Zone::Fixed(_)) {
            // A fixed offset never changes: the wall clock decides (and this is every record's
            // path in a UTC run, so it stays short).
            return d;
        }
        // Where clocks change near the cut-off, the wall time may repeat or be skipped, and the
        // wall-clock answer would make a day non-contiguous: there, decide by instants.
        let near = [-1, 0, 1].into_iter().any(|k| {
            let cut = self.end_wall(d + Duration::days(k));
            (local - cut).num_minutes().abs() <= 3 * 60
        });
        if !near {
            return d;
        }
        let mut d = d;
        while at >= self.end(d) {
            d += Duration::days(1);
        }
        while at < self.end(d - Duration::days(1)) {
            d -= Duration::days(1);
        }
        d
    }

    fn by_wall_clock(&self, local: NaiveDateTime) -> NaiveDate {
        let shifted = local - (self.cutoff - NaiveTime::MIN);
        if self.cutoff == NaiveTime::MIN {
            shifted.date()
        } else {
            shifted.date() + Duration::days(1)
        }
    }

    /// The local wall time at which business day `d` ends.
    fn end_wall(&self, d: NaiveDate) -> NaiveDateTime {
        if self.cutoff == NaiveTime::MIN {
            (d + Duration::days(1)).and_time(NaiveTime::MIN)
        } else {
            d.and_time(self.cutoff)
        }
    }

    /// The instant business day `d` ends: the first instant whose wall time reaches the cut-off
    /// (in a DST overlap, the first of the two; in a gap, the moment the clock jumps past it).
    fn end(&self, d: NaiveDate) -> DateTime<Utc> {
        let wall = self.end_wall(d);
        if let Zone::Iana(tz) = &self.zone {
            use chrono::TimeZone;
            match tz.from_local_datetime(&wall) {
                chrono::LocalResult::Single(x) => return x.with_timezone(&Utc),
                chrono::LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
                chrono::LocalResult::None => {}
            }
        }
        let reaches = |t: DateTime<Utc>| self.zone.local(t) >= wall;
        // Every zone's offset lies within -12h..+14h: search that span of instants for the first one
        // whose wall time reaches `wall` (monotonic there but for DST steps, which only delay it).
        let (mut lo, mut hi) = (
            wall.and_utc() - Duration::hours(15),
            wall.and_utc() + Duration::hours(13),
        );
        // Clocks change on whole seconds.
        while hi - lo > Duration::seconds(1) {
            let mid = lo + Duration::seconds((hi - lo).num_seconds() / 2);
            if reaches(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// [`BusinessDay::date_of`], answered from `memo` when `at` falls in the span of the day asked
    /// about before: a file's records come roughly in time order, so most do, and are spared the
    /// zone arithmetic (4% of a run's CPU at 5M records).
    pub fn date_of_memo(&self, at: DateTime<Utc>, memo: &mut DayMemo) -> NaiveDate {
        if let Some((start, end, d)) = memo.span
            && start <= at
            && at < end
        {
            memo.hit = true;
            return d;
        }
        let d = self.date_of(at);
        if memo.skip > 0 {
            memo.skip -= 1;
            return d;
        }
        if memo.span.is_some() && !memo.hit {
            // The last span served no other record: the records are not in time order, and
            // finding a span costs more than it saves. Look again a while later.
            memo.skip = DayMemo::SKIP;
        }
        let (start, end) = (self.end(d - Duration::days(1)), self.end(d));
        // Only a span that holds the instant by the same rule is kept (it always should).
        memo.span = (start <= at && at < end).then_some((start, end, d));
        memo.hit = false;
        d
    }

    /// Today's date in the run's zone, minus one: the default business date of a nightly run.
    pub fn yesterday(&self) -> NaiveDate {
        self.zone.local(Utc::now()).date() - Duration::days(1)
    }
}

/// The last business day [`BusinessDay::date_of_memo`] found: its span of instants `[start, end)`.
#[derive(Debug, Default, Clone)]
pub struct DayMemo {
    span: Option<(DateTime<Utc>, DateTime<Utc>, NaiveDate)>,
    /// Whether the span answered a record since it was found.
    hit: bool,
    /// Misses left before a span is looked for again.
    skip: u32,
}

impl DayMemo {
    /// Misses answered without a span after one that served no record.
    const SKIP: u32 = 63;
}

/// A settlement window: how many days one side may lag (or lead) the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub days: u32,
    /// Count business days (Monday to Friday, skipping the holiday list) instead of calendar days.
    pub business: bool,
}

impl Window {
    /// `"0d"`, `"2d"` (calendar days) or `"3bd"` (business days).
    pub fn parse(text: &str) -> Option<Window> {
        let t = text.trim();
        let (digits, business) = if let Some(d) = t.strip_suffix("bd") {
            (d, true)
        } else {
            (t.strip_suffix('d')?, false)
        };
        if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Window {
            days: digits.parse().ok()?,
            business,
        })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.days, if self.business { "bd" } else { "d" })
    }
}

/// Weekends and the holiday list, for windows counted in business days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Holidays(pub BTreeSet<NaiveDate>);

impl Holidays {
    pub fn is_business_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.0.contains(&d)
    }

    /// The last date of a window that opens on `start`: `start` plus the window's days, where a
    /// business-day window counts only business days (and so can end on nothing but one).
    pub fn window_end(&self, start: NaiveDate, w: Window) -> NaiveDate {
        if !w.business {
            return start + Duration::days(w.days as i64);
        }
        let mut d = start;
        let mut left = w.days;
        while left > 0 {
            d += Duration::days(1);
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Reads a holiday file: one `YYYY-MM-DD` per line; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Holidays, String> {
        let mut set = BTreeSet::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (i, line) in text.lines().enumerate() {
            let t = line.split('#').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            let d = NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map_err(|_| format!("line {}: {t:?} is not a date (YYYY-MM-DD)", i + 1))?;
            set.insert(d);
        }
        Ok(Holidays(set))
    }
}

/// Expands `{date}`, `{date+1}`, `{date-2}` and a format after a colon (`{date:%Y%m%d}`,
/// `{date-1:%d.%m.%Y}`) in a source path.
pub fn expand_date(template: &str, date: NaiveDate) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{date") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{{date...}} is not closed in {template:?}"))?;
        let inner = &after[5..end];
        let (offset, format) = match inner.split_once(':') {
            Some((o, f)) => (o, f),
            None => (inner, "%Y-%m-%d"),
        };
        let days: i64 = match offset {
            "" => 0,
            o if (o.starts_with('+') || o.starts_with('-'))
                && o.len() > 1
                && o.len() <= 4
                && o[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                o.parse().map_err(|_| format!("bad offset {o:?}"))?
            }
            o => {
                return Err(format!(
                    "{{date{o}...}}: expected {{date}}, {{date+N}} or {{date-N}}, optionally with :FORMAT"
                ));
            }
        };
        let items: Vec<_> = chrono::format::StrftimeItems::new(format).collect();
        if format.is_empty()
            || items
                .iter()
                .any(|i| matches!(i, chrono::format::Item::Error))
        {
            return Err(format!("{format:?} is not a valid date format"));
        }
        let d = date + Duration::days(days);
        // A date has no time or zone: `%H` or `%z` cannot be written, and chrono says so with an error.
        use std::fmt::Write;
        write!(out, "{}", d.format_with_items(items.into_iter())).map_err(|_| {
            format!("{format:?} asks for a time or zone; a date template can only hold date fields (%Y %m %d %j ...)")
        })?;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(300, "tests/calendar.proptest-regressions"))]
        /// The memo answers as `date_of` does, for instants in time order (where it serves) and
        /// jumping about (where it steps aside), across DST changes and cut-offs near them.
        #[test]
        fn the_memo_answers_as_date_of_does(
            zone in proptest::sample::select(vec!["UTC", "+05:30", "Europe/Berlin", "America/New_York", "Pacific/Apia", "Australia/Lord_Howe"]),
            cutoff in proptest::sample::select(vec!["00:00", "02:30", "17:00", "23:59"]),
            start in 1_700_000_000i64..1_800_000_000,
            steps in proptest::collection::vec(-40_000i64..90_000, 1..400),
        ) {
            let day = BusinessDay {
                zone: Zone::parse(zone).unwrap(),
                cutoff: NaiveTime::parse_from_str(cutoff, "%H:%M").unwrap(),
            };
            let mut memo = DayMemo::default();
            let mut t = start;
            for (i, step) in steps.iter().enumerate() {
                // Mostly forward in small steps; every seventh a jump of up to 90 days either way.
                t += if i % 7 == 6 { step * 86 } else { step / 8 };
                let at = DateTime::from_timestamp(t, (t % 1000) as u32 * 1_000_000).unwrap();
                proptest::prop_assert_eq!(day.date_of_memo(at, &mut memo), day.date_of(at), "{}", at);
            }
        }
    }

    #[test]
    fn business_date_follows_zone_and_cutoff() {
        let day = |zone: &str, cutoff: &str| BusinessDay {
            zone: Zone::parse(zone).unwrap(),
            cutoff: NaiveTime::parse_from_str(cutoff, "%H:%M").unwrap(),
        };
        let cases = [
            // zone, cut-off, instant, business date
            ("UTC", "00:00", "2026-12-01T00:00:00Z", "2026-12-01"),
            ("UTC", "00:00", "2026-12-01T23:59:59Z", "2026-12-01"),
            // exactly at the cut-off: the next day
            ("UTC", "18:00", "2026-12-01T18:00:00Z", "2026-12-02"),
            ("UTC", "18:00", "2026-12-01T17:59:59.999Z", "2026-12-01"),
            // Shanghai (UTC+8): 16:00 UTC is local midnight
            (
                "Asia/Shanghai",
                "00:00",
                "2026-12-01T15:59:59Z",
                "2026-12-01",
            ),
            (
                "Asia/Shanghai",
                "00:00",
                "2026-12-01T16:00:00Z",
                "2026-12-02",
            ),
            // the edges of the offset range
            ("+14:00", "00:00", "2026-11-30T10:00:00Z", "2026-12-01"),
            ("+14:00", "00:00", "2026-11-30T09:59:59Z", "2026-11-30"),
            ("-12:00", "00:00", "2026-12-02T11:59:59Z", "2026-12-01"),
            ("-12:00", "00:00", "2026-12-02T12:00:00Z", "2026-12-02"),
            // Berlin, a cut-off of 17:00 on the day DST ends (25 Oct 2026: CEST -> CET at 03:00)
            (
                "Europe/Berlin",
                "17:00",
                "2026-10-25T15:59:59Z",
                "2026-10-25",
            ),
            (
                "Europe/Berlin",
                "17:00",
                "2026-10-25T16:00:00Z",
                "2026-10-26",
            ),
            // A cut-off at 02:30, the wall time that happens twice on 25 Oct: the day ends at the
            // first 02:30 (00:30Z), and the second 02:xx hour belongs to the next day throughout.
            (
                "Europe/Berlin",
                "02:30",
                "2026-10-25T00:20:00Z",
                "2026-10-25",
            ),
            (
                "Europe/Berlin",
                "02:30",
                "2026-10-25T00:30:00Z",
                "2026-10-26",
            ),
            (
                "Europe/Berlin",
                "02:30",
                "2026-10-25T01:10:00Z",
                "2026-10-26",
            ),
            (
                "Europe/Berlin",
                "02:30",
                "2026-10-25T01:40:00Z",
                "2026-10-26",
            ),
            // ... and at 02:30 on 29 Mar, which never happens: the day ends when the clock jumps.
            (
                "Europe/Berlin",
                "02:30",
                "2026-03-29T00:59:59Z",
                "2026-03-29",
            ),
            (
                "Europe/Berlin",
                "02:30",
                "2026-03-29T01:00:00Z",
                "2026-03-30",
            ),
            // ... and the day before, still CEST (UTC+2)
            (
                "Europe/Berlin",
                "17:00",
                "2026-10-24T15:00:00Z",
                "2026-10-25",
            ),
            (
                "Europe/Berlin",
                "17:00",
                "2026-10-24T14:59:59Z",
                "2026-10-24",
            ),
        ];
        for (zone, cutoff, at, want) in cases {
            assert_eq!(
                day(zone, cutoff).date_of(utc(at)),
                d(want),
                "{zone} {cutoff} {at}"
            );
        }
    }

    #[test]
    fn windows_in_calendar_and_business_days() {
        assert_eq!(
            Window::parse("2d"),
            Some(Window {
                days: 2,
                business: false
            })
        );
        assert_eq!(
            Window::parse("3bd"),
            Some(Window {
                days: 3,
                business: true
            })
        );
        for bad in ["", "d", "2", "-1d", "2 days", "1.5d", "10000d", "2h"] {
            assert_eq!(Window::parse(bad), None, "{bad:?}");
        }
        let hol = Holidays::parse("# bank holidays\n2026-12-25\n\n2026-12-28 # moved\n").unwrap();
        let w = |s: &str| Window::parse(s).unwrap();
        // Thursday 24 Dec + 1 business day skips Christmas and the weekend and the 28th.
        assert_eq!(hol.window_end(d("2026-12-24"), w("1bd")), d("2026-12-29"));
        assert_eq!(hol.window_end(d("2026-12-24"), w("2d")), d("2026-12-26"));
        assert_eq!(hol.window_end(d("2026-12-24"), w("0bd")), d("2026-12-24"));
        // Friday + 1 business day is Monday.
        assert_eq!(
            Holidays::default().window_end(d("2026-12-04"), w("1bd")),
            d("2026-12-07")
        );
        assert!(
            Holidays::parse("2026-13-01")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn date_templates() {
        let day = d("2026-12-01");
        let cases = [
            ("orders-{date}.jsonl", "orders-2026-12-01.jsonl"),
            ("bank/{date+1}/*.csv", "bank/2026-12-02/*.csv"),
            ("psp-{date-1:%Y%m%d}.csv", "psp-20261130.csv"),
            ("{date}-{date+31:%d.%m.%Y}", "2026-12-01-01.01.2027"),
            ("plain.csv", "plain.csv"),
        ];
        for (t, want) in cases {
            assert_eq!(expand_date(t, day).unwrap(), want, "{t}");
        }
        for bad in [
            "{date",
            "{date+}",
            "{date*2}",
            "{date:}",
            "{datex}",
            "{date:%H%M}",
            "{date:%z}",
            "{date:%s}",
        ] {
            assert!(expand_date(bad, day).is_err(), "{bad:?}");
        }
    }
}
