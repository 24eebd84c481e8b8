//! Each user's `last_used_at`, written behind the records by up to a
//! minute: the batch writer tells it what it saw and wrote.

use super::UsageRecord;
use chrono::{NaiveDateTime, TimeDelta};
use std::collections::HashMap;
use std::sync::Arc;

/// How far a user's `last_used_at` may lag behind while the server runs.
/// Written with every batch, it put the users page into every commit: one
/// of about eight pages a small commit writes to the WAL.
const LAST_USED_LAG: TimeDelta = TimeDelta::seconds(60);

/// A user and the label of their key.
pub type Holder = (Arc<str>, Arc<str>);

/// Each key's last use as seen in the records and as last written.
#[derive(Default)]
pub struct LastUsed(HashMap<Holder, Use>);

struct Use {
    seen: NaiveDateTime,
    written: Option<NaiveDateTime>,
}

impl LastUsed {
    pub fn saw(&mut self, batch: &[UsageRecord]) {
        for r in batch {
            let holder = (r.user.clone(), r.key.clone());
            match self.0.get_mut(&holder) {
                Some(u) => u.seen = u.seen.max(r.at),
                None => {
                    let first = Use {
                        seen: r.at,
                        written: None,
                    };
                    self.0.insert(holder, first);
                }
            }
        }
    }

    /// The uses to write now: a user's first, one that moved by
    /// `LAST_USED_LAG` since it was written, and all that moved at all
    /// when `all` (at stop).
    pub fn due(&self, all: bool) -> Vec<(Holder, NaiveDateTime)> {
        let lag = if all {
            TimeDelta::zero()
        } else {
            LAST_USED_LAG
        };
        self.0
            .iter()
            .filter(|(_, u)| u.written.is_none_or(|w| u.seen > w && u.seen - w >= lag))
            .map(|(name, u)| (name.clone(), u.seen))
            .collect()
    }

    pub fn wrote(&mut self, uses: Vec<(Holder, NaiveDateTime)>) {
        for (name, at) in uses {
            if let Some(u) = self.0.get_mut(&name) {
                u.written = Some(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32, second: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
            .unwrap()
            .and_hms_opt(10, minute, second)
            .unwrap()
    }

    fn used(user: &str, at: NaiveDateTime) -> UsageRecord {
        UsageRecord {
            at,
            user: user.into(),
            ..UsageRecord::default()
        }
    }

    fn due(last_used: &LastUsed, all: bool) -> Vec<(String, NaiveDateTime)> {
        let mut due: Vec<_> = last_used
            .due(all)
            .into_iter()
            .map(|((name, _), at)| (name.to_string(), at))
            .collect();
        due.sort();
        due
    }

    #[test]
    fn last_use_is_written_first_then_a_minute_on_then_at_stop() {
        let mut last_used = LastUsed::default();
        last_used.saw(&[used("bob", at(0, 5)), used("bob", at(0, 1))]);
        assert_eq!(due(&last_used, false), [("bob".into(), at(0, 5))]);
        last_used.wrote(last_used.due(false));
        assert_eq!(due(&last_used, false), []);

        last_used.saw(&[used("bob", at(1, 4)), used("eve", at(0, 30))]);
        assert_eq!(due(&last_used, false), [("eve".into(), at(0, 30))]);
        last_used.wrote(last_used.due(false));

        last_used.saw(&[used("bob", at(1, 5))]);
        assert_eq!(due(&last_used, false), [("bob".into(), at(1, 5))]);
        last_used.wrote(last_used.due(false));

        last_used.saw(&[used("eve", at(0, 31))]);
        assert_eq!(due(&last_used, false), []);
        assert_eq!(due(&last_used, true), [("eve".into(), at(0, 31))]);
        last_used.wrote(last_used.due(true));
        assert_eq!(due(&last_used, true), []);
    }
}
