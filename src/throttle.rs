//! Failed key and admin-token attempts, counted per client address: after
//! `MAX_FAILURES` in a minute, that address is refused (429 with
//! `Retry-After`) until the minute since its first failure is over, so a
//! key cannot be guessed at speed. Never per user name or key, so nobody
//! can lock another user out; behind a reverse proxy the client's address
//! comes from `X-Forwarded-For` only when `trusted_proxies` lists the peer.
//! A loopback client (a process on this host, as fail2ban's `ignoreip`
//! assumes by default) is not counted.

use actix_web::HttpRequest;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it, the ones whose minute is over
/// are forgotten (and, if that is not enough, all of them).
const MAX_ADDRESSES: usize = 100_000;

#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// Whether `addr` may try again now; else the seconds to wait.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), u64> {
        if addr.is_loopback() {
            return Ok(());
        }
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&addr) {
            Some((since, n)) if *n >= MAX_FAILURES && now.duration_since(*since) < WINDOW => {
                let left = WINDOW - now.duration_since(*since);
                Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
            }
            _ => Ok(()),
        }
    }

    /// `addr` failed once more.
    pub fn failed(&self, addr: IpAddr, now: Instant) {
        if addr.is_loopback() {
            return;
        }
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, (since, _)| now.duration_since(*since) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                map.clear();
            }
        }
        let entry = map.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// The client's address: the peer's, or, when the peer is a trusted
/// proxy, the last address in `X-Forwarded-For` that is not one.
pub fn client_address(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !is_trusted(a))
            .unwrap_or(peer),
    )
}

/// `trusted_proxies` entries: addresses or networks (`10.0.0.0/8`).
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{e}` is not an address or a network (10.0.0.0/8)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_failures_in_a_minute_lock_that_address_only() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(t.check(a, t0).is_ok(), "after {i}");
            t.failed(a, t0 + Duration::from_secs(1));
        }
        assert_eq!(t.check(a, t0 + Duration::from_secs(30)), Err(31));
        assert!(t.check(b, t0).is_ok(), "another address is not locked out");
        assert!(
            t.check(a, t0 + Duration::from_secs(61)).is_ok(),
            "the minute is over"
        );
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let nets = parse_trusted(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(nets[1].contains(&"10.2.3.4".parse::<IpAddr>().unwrap()));
        assert!(parse_trusted(&["nginx".into()]).is_err());
    }
}
