//! Whether the database answers (SPEC §10): the key refresher asks it every
//! second. While it does not, known keys keep working from memory with the
//! limits last seen, for `database.outage_grace`; after that, requests of
//! users with a limit are refused (503), since what they used elsewhere can
//! no longer be known. Usage waits in memory meanwhile (`usage::writer`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Outage {
    /// When the database first failed to answer, in ms since the epoch;
    /// 0 while it answers.
    since_ms: AtomicI64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as i64)
}

impl Outage {
    /// The database answered.
    pub fn answered(&self) {
        if self.since_ms.swap(0, Ordering::AcqRel) != 0 {
            tracing::warn!("the database answers again");
        }
    }

    /// The database did not answer.
    pub fn failed(&self) {
        let now = now_ms();
        if self
            .since_ms
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::error!(
                "the database does not answer: serving known keys from memory, usage waits"
            );
        }
    }

    /// How long the database has not answered, if it does not.
    pub fn lasted(&self) -> Option<Duration> {
        match self.since_ms.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_millis(
                u64::try_from(now_ms() - since).unwrap_or(0),
            )),
        }
    }

    /// Whether the outage has lasted longer than `grace`.
    pub fn beyond(&self, grace: Duration) -> bool {
        self.lasted().is_some_and(|d| d > grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_lasts_from_the_first_failure_until_an_answer() {
        let o = Outage::default();
        assert_eq!(o.lasted(), None);
        o.failed();
        let first = o.since_ms.load(Ordering::Acquire);
        o.failed();
        assert_eq!(
            o.since_ms.load(Ordering::Acquire),
            first,
            "the first failure counts"
        );
        assert!(o.lasted().is_some());
        assert!(!o.beyond(Duration::from_secs(60)));
        assert!(o.beyond(Duration::ZERO) || o.lasted() == Some(Duration::ZERO));
        o.answered();
        assert_eq!(o.lasted(), None);
        assert!(!o.beyond(Duration::ZERO));
    }
}
