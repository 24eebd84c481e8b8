//! Settling charges: work that finishes after its reply (a background
//! response, a stored response whose stream the client cut) waits in the
//! `charges` table; this thread asks the upstream that holds it, with the
//! upstream's key, how it ended (`GET /v1/responses/{id}`), backing off
//! from 1 s to 20 s per charge, and hands the real usage to the usage
//! writer, which writes the record exactly once. A user's own `GET` of the
//! finished object settles it too (`proxy`). A charge whose object is gone
//! or never finishes within a day is charged its fallback, marked
//! estimated.

use crate::state::Gateway;
use crate::upstream::client::Clients;
use crate::upstream::failover;
use crate::usage::charges::{self, Due, Settlement};
use crate::usage::extract::{self, ToolCalls};
use crate::usage::{Extras, Tokens};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the table is looked at for charges due.
const TICK: Duration = Duration::from_secs(1);
/// Charges looked at per tick, at most.
const PER_TICK: i64 = 32;

pub struct Settler {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Settler {
    pub fn start(gw: Arc<Gateway>, connect_timeout: Duration, timeout: Duration) -> Settler {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("chatgate-settle".into())
            .spawn(move || {
                // awc runs on actix's runtime: one of its own, on this thread.
                actix_web::rt::System::new().block_on(async move {
                    let clients = Clients::new(connect_timeout, timeout, gw.metrics.clone());
                    loop {
                        match stopped.try_recv() {
                            Err(mpsc::TryRecvError::Empty) => {}
                            _ => return,
                        }
                        tick(&gw, &clients).await;
                        actix_web::rt::time::sleep(TICK).await;
                    }
                });
            })
            .expect("spawn the settling thread");
        Settler {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Settler {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn tick(gw: &Gateway, clients: &Clients) {
    let now = crate::db::now();
    let due = match gw.pool.get() {
        Ok(mut conn) => charges::take_due(&mut conn, now, PER_TICK),
        Err(e) => {
            tracing::debug!("cannot look for charges due: {e}");
            return;
        }
    };
    let due = match due {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("cannot look for charges due: {e}");
            return;
        }
    };
    for charge in due {
        if let Some(s) = look(gw, clients, &charge, now).await {
            gw.usage.settle(s);
        }
    }
}

/// How a charge's object ended, if it did (or can no longer be asked).
async fn look(
    gw: &Gateway,
    clients: &Clients,
    charge: &Due,
    now: chrono::NaiveDateTime,
) -> Option<Settlement> {
    let give_up = || Settlement {
        id: Box::from(charge.id.as_str()),
        usage: None,
    };
    if now - charge.created_at > charges::SETTLE_WITHIN {
        tracing::warn!(charge = %charge.id, "no final usage within a day; charged its fallback");
        return Some(give_up());
    }
    let live = gw.live();
    let Some(upstream) = live.upstreams.named(&charge.upstream) else {
        tracing::warn!(charge = %charge.id, upstream = %charge.upstream,
            "the upstream that holds it is not configured any more; charged its fallback");
        return Some(give_up());
    };
    let client = clients.for_upstream(upstream);
    let path = format!("/responses/{}", charge.id);
    let mut res = match failover::fetch(&client, upstream, &path).await {
        Ok(res) => res,
        Err(e) => {
            tracing::debug!(charge = %charge.id, "cannot ask how it ended yet: {e}");
            return None;
        }
    };
    if res.status().as_u16() == 404 {
        return Some(give_up());
    }
    if !res.status().is_success() {
        return None;
    }
    let body = res.body().limit(16 << 20).await.ok()?;
    outcome(&charge.id, &body)
}

/// A settlement from a stored response as the upstream returns it, if it
/// is final (`completed`, `incomplete`, `failed`, `cancelled`); its usage,
/// service tier and tool calls, or the fallback where it reports none.
pub fn outcome(id: &str, body: &[u8]) -> Option<Settlement> {
    #[derive(serde::Deserialize)]
    struct Status<'a> {
        #[serde(borrow, default)]
        status: Option<std::borrow::Cow<'a, str>>,
    }
    let status: Status = serde_json::from_slice(body).ok()?;
    match status.status.as_deref() {
        Some("completed" | "incomplete" | "failed" | "cancelled") => {}
        _ => return None,
    }
    let usage = extract::from_json(body).and_then(|r| {
        let tokens: Tokens = r.tokens()?;
        let mut extras = r.extras(Extras::default());
        ToolCalls::count(body).add_to(&mut extras);
        Some((tokens, extras))
    });
    Some(Settlement {
        id: Box::from(id),
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_final_response_settles() {
        assert!(outcome("r", br#"{"status":"queued","usage":null}"#).is_none());
        assert!(outcome("r", br#"{"status":"in_progress"}"#).is_none());
        let done = outcome(
            "r",
            br#"{"id":"r","status":"completed","service_tier":"priority","output":[{"type":"web_search_call"}],
                "usage":{"input_tokens":250000,"output_tokens":60000}}"#,
        )
        .unwrap();
        let (tokens, extras) = done.usage.unwrap();
        assert_eq!((tokens.prompt, tokens.completion), (250_000, 60_000));
        assert_eq!(extras.tier, crate::usage::Tier::Priority);
        assert_eq!(extras.web_searches, 1);
        // Cancelled without usage: its fallback is charged.
        let cancelled = outcome("r", br#"{"status":"cancelled","usage":null}"#).unwrap();
        assert!(cancelled.usage.is_none());
    }
}
