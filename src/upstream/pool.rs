//! A pool of upstream keys: round-robin, a key that answers 429 or 5xx (or
//! cannot be reached) cools down with exponential backoff, a key that
//! answers 401 is parked until the configuration is reloaded.

use actix_web::http::header::{HeaderName, HeaderValue};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const FIRST_COOLDOWN: Duration = Duration::from_secs(1);
const MAX_COOLDOWN: Duration = Duration::from_secs(60);

pub struct PoolKey {
    /// The header that carries the key (`authorization` or `api-key`) and
    /// its ready-made value, marked sensitive so header dumps hide it.
    pub header: (HeaderName, HeaderValue),
    /// For logs: `sk-ab…wxyz`.
    pub hint: String,
    /// Milliseconds since the pool's epoch before which the key is not used.
    cool_until: AtomicU64,
    failures: AtomicU32,
    parked: AtomicBool,
}

pub struct KeyPool {
    keys: Vec<PoolKey>,
    next: AtomicUsize,
    epoch: Instant,
}

impl KeyPool {
    /// `keys` as (header name, value); `bearer` prefixes values with `Bearer `.
    pub fn new(name: HeaderName, keys: &[String], bearer: bool) -> Result<KeyPool, String> {
        let keys = keys
            .iter()
            .filter(|k| !k.is_empty())
            .map(|k| {
                let text = if bearer {
                    format!("Bearer {k}")
                } else {
                    k.clone()
                };
                let mut value = HeaderValue::from_str(&text)
                    .map_err(|_| "an API key has characters a header cannot carry".to_string())?;
                value.set_sensitive(true);
                Ok(PoolKey {
                    header: (name.clone(), value),
                    hint: crate::keys::hint(k),
                    cool_until: AtomicU64::new(0),
                    failures: AtomicU32::new(0),
                    parked: AtomicBool::new(false),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if keys.is_empty() {
            return Err("no API key".into());
        }
        Ok(KeyPool {
            keys,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
        })
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The keys to try for one request, in order: the usable ones starting
    /// at the round-robin position; if all are cooling down, the one that
    /// is ready first. Parked keys never.
    pub fn order(&self, now: Instant) -> Vec<usize> {
        let n = self.keys.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.ms(now);
        let live = |i: &usize| !self.keys[*i].parked.load(Ordering::Acquire);
        let ready: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(live)
            .filter(|i| self.keys[*i].cool_until.load(Ordering::Acquire) <= now)
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        (0..n)
            .filter(live)
            .min_by_key(|i| self.keys[*i].cool_until.load(Ordering::Acquire))
            .into_iter()
            .collect()
    }

    pub fn key(&self, i: usize) -> &PoolKey {
        &self.keys[i]
    }

    pub fn succeeded(&self, i: usize) {
        self.keys[i].failures.store(0, Ordering::Release);
    }

    /// 429, 5xx or unreachable: 1 s, 2 s, 4 s … up to a minute.
    pub fn cool_down(&self, i: usize, now: Instant) -> Duration {
        let k = &self.keys[i];
        let failures = k.failures.fetch_add(1, Ordering::AcqRel).min(16);
        let wait = FIRST_COOLDOWN
            .saturating_mul(1 << failures)
            .min(MAX_COOLDOWN);
        k.cool_until.store(self.ms(now + wait), Ordering::Release);
        wait
    }

    /// 401: the key is wrong or revoked; not used again until reload.
    pub fn park(&self, i: usize) {
        self.keys[i].parked.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::AUTHORIZATION;

    fn pool(n: usize) -> KeyPool {
        let keys: Vec<String> = (0..n).map(|i| format!("sk-key-number-{i:04}")).collect();
        KeyPool::new(AUTHORIZATION, &keys, true).unwrap()
    }

    #[test]
    fn round_robin_with_the_others_as_fallback() {
        let p = pool(3);
        let now = Instant::now();
        assert_eq!(p.order(now), [0, 1, 2]);
        assert_eq!(p.order(now), [1, 2, 0]);
        assert_eq!(p.key(0).header.1, "Bearer sk-key-number-0000");
        assert!(p.key(0).header.1.is_sensitive());
        assert_eq!(p.key(0).hint, "sk-ke…0000");
    }

    #[test]
    fn cooling_keys_are_skipped_with_growing_backoff() {
        let p = pool(2);
        let now = Instant::now();
        assert_eq!(p.cool_down(0, now), Duration::from_secs(1));
        assert_eq!(p.cool_down(0, now), Duration::from_secs(2));
        assert_eq!(p.order(now), [1]);
        assert_eq!(p.order(now), [1]);
        assert_eq!(p.order(now + Duration::from_secs(2)).len(), 2);
        p.succeeded(0);
        assert_eq!(
            p.cool_down(0, now),
            Duration::from_secs(1),
            "success resets"
        );
        for _ in 0..20 {
            p.cool_down(1, now);
        }
        assert_eq!(p.cool_down(1, now), MAX_COOLDOWN);
        // All cooling: the one ready first is still tried.
        assert_eq!(p.order(now), [0]);
    }

    #[test]
    fn parked_keys_are_never_tried() {
        let p = pool(2);
        p.park(1);
        let now = Instant::now();
        assert_eq!(p.order(now), [0]);
        assert_eq!(p.order(now), [0]);
        p.park(0);
        assert!(p.order(now).is_empty());
    }
}
