//! The time range of a report: a named period (`today`, `this-month`,
//! `30d`, …) or `--since`/`--until` bounds, checked (never a panic).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};

/// A half-open time range [since, until), UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub since: NaiveDateTime,
    pub until: NaiveDateTime,
}

impl Range {
    /// Whether it runs from a midnight to a midnight: the daily totals
    /// answer it, whatever the number of records.
    /// An open end (`until` not given) is whole days too.
    pub fn whole_days(&self) -> bool {
        let midnight = |t: NaiveDateTime| t.time() == chrono::NaiveTime::MIN;
        midnight(self.since) && (midnight(self.until) || self.until == crate::db::end_of_time())
    }
}

pub fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).expect("midnight exists")
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

/// `today`, `yesterday`, `this-month`, `last-month` or `Nd` (the last N
/// days, today included). Date arithmetic is checked: a period reaching
/// outside the calendar is an error, never a panic.
pub fn period(name: &str, now: NaiveDateTime) -> Result<Range, String> {
    let today = now.date();
    let too_far = || format!("`{name}` reaches outside the calendar");
    let tomorrow = today.succ_opt().ok_or_else(too_far)?;
    let range = |a: NaiveDate, b: NaiveDate| Range {
        since: midnight(a),
        until: midnight(b),
    };
    Ok(match name {
        "today" => range(today, tomorrow),
        "yesterday" => range(today.pred_opt().ok_or_else(too_far)?, today),
        "this-month" => range(first_of_month(today), tomorrow),
        "last-month" => {
            let this = first_of_month(today);
            let last = this.pred_opt().ok_or_else(too_far)?;
            range(first_of_month(last), this)
        }
        days => {
            let n: u64 = days
                .strip_suffix('d')
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!("`{name}` is not a period (today, yesterday, this-month, last-month or Nd like 30d)")
                })?;
            let since = tomorrow
                .checked_sub_days(chrono::Days::new(n))
                .ok_or_else(too_far)?;
            range(since, tomorrow)
        }
    })
}

/// A `--since`/`--until` bound: `YYYY-MM-DD` or RFC 3339. A date as `until`
/// includes that whole day.
pub fn bound(s: &str, is_until: bool) -> Result<NaiveDateTime, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if is_until {
            d.succ_opt()
                .ok_or_else(|| format!("`{s}` is the last day of the calendar"))?
        } else {
            d
        };
        return Ok(midnight(d));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).naive_utc())
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// The range asked for; by default this month.
pub fn resolve(
    since: Option<&str>,
    until: Option<&str>,
    period_name: Option<&str>,
    now: NaiveDateTime,
) -> Result<Range, String> {
    let mut range =
        period(period_name.unwrap_or("this-month"), now).map_err(|e| format!("--period: {e}"))?;
    if period_name.is_none() && (since.is_some() || until.is_some()) {
        range = Range {
            since: crate::db::beginning_of_time(),
            until: crate::db::end_of_time(),
        };
    }
    if let Some(s) = since {
        range.since = bound(s, false).map_err(|e| format!("--since: {e}"))?;
    }
    if let Some(u) = until {
        range.until = bound(u, true).map_err(|e| format!("--until: {e}"))?;
    }
    if range.since >= range.until {
        return Err("the range is empty: --since must be before --until".into());
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn periods() {
        let now = at("2026-03-15 12:00:00");
        for (name, since, until) in [
            ("last-month", "2026-02-01", "2026-03-01"),
            ("this-month", "2026-03-01", "2026-03-16"),
            ("yesterday", "2026-03-14", "2026-03-15"),
            ("today", "2026-03-15", "2026-03-16"),
            ("7d", "2026-03-09", "2026-03-16"),
        ] {
            let r = period(name, now).unwrap();
            let day = |d: &str| at(&format!("{d} 00:00:00"));
            assert_eq!((r.since, r.until), (day(since), day(until)), "{name}");
        }
        let jan = period("last-month", at("2026-01-10 00:00:00")).unwrap();
        assert_eq!(jan.since, at("2025-12-01 00:00:00"));
        assert!(period("0d", now).is_err());
        assert!(period("fortnight", now).is_err());
    }

    #[test]
    fn since_until_dates_cover_whole_days() {
        let now = at("2026-12-15 12:00:00");
        let r = resolve(Some("2026-11-01"), Some("2026-11-30"), None, now).unwrap();
        assert_eq!(
            (r.since, r.until),
            (at("2026-11-01 00:00:00"), at("2026-12-01 00:00:00"))
        );
        let r = resolve(None, Some("2026-11-30T12:00:00Z"), None, now).unwrap();
        assert_eq!(r.until, at("2026-11-30 12:00:00"));
        assert!(resolve(Some("2026-13-01"), None, None, now).is_err());
        assert!(resolve(Some("2026-11-02"), Some("2026-11-01"), None, now).is_err());
    }
}
