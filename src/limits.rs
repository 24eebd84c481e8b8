//! Access rules that count: token and request limits and USD budgets per
//! period, and requests per minute. All checked from memory on the request
//! path.
//!
//! Each user has a `Ledger` that outlives key-table reloads: what the user
//! used this period (re-read from the database's daily totals by the usage
//! writer after each batch and at least every second, so other instances'
//! usage is seen too), what in-flight requests have reserved, and the
//! times of their requests in the last minute.
//!
//! Admission takes a reservation atomically (compare-and-swap), so
//! concurrent requests cannot all pass a check made before any of them is
//! charged. A reservation is the request's estimated prompt plus its
//! `max_tokens` (or `limits.reserve_completion_tokens`), capped at what is
//! left; it is released only after the request's real usage is committed
//! and re-read, so `used + reserved` never under-counts. A request whose
//! real usage exceeds its reservation can overshoot the limit by that
//! excess; at most every in-flight request's excess, and a request is only
//! admitted while something is left.
//!
//! Where several instances share the database, each admits only within
//! its share of a limit (`leases.rs` gets and gives back shares): the
//! parallel slots and the rpm, and what requests may hold reserved of a
//! usage limit. A committed request's usage leaves the share it was
//! reserved from, so shares and what is committed never sum past a limit.
//!
//! Longer than 450 lines (1,100 before its tests): the share of each
//! counter sits beside the counter it caps, in the same atomic steps; the
//! next step of the house (#37) is to split the counters (`Ledger`), the
//! admission of a request, and the ledgers' registry into three files.

use chrono::{Datelike, Duration as Days, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitPeriod {
    #[default]
    Total,
    Day,
    Month,
}

impl LimitPeriod {
    pub const NAMES: [&'static str; 3] = ["total", "day", "month"];

    pub fn parse(s: &str) -> Result<LimitPeriod, String> {
        match s {
            "total" => Ok(LimitPeriod::Total),
            "day" => Ok(LimitPeriod::Day),
            "month" => Ok(LimitPeriod::Month),
            _ => Err(format!("`{s}` is not a period: total, day or month")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitPeriod::Total => "total",
            LimitPeriod::Day => "day",
            LimitPeriod::Month => "month",
        }
    }

    pub fn from_db(s: &str) -> LimitPeriod {
        match s {
            "day" => LimitPeriod::Day,
            "month" => LimitPeriod::Month,
            _ => LimitPeriod::Total,
        }
    }

    /// When the current period began.
    pub fn start(self, now: NaiveDateTime) -> NaiveDateTime {
        let day = now.date();
        let start = match self {
            LimitPeriod::Total => return crate::db::beginning_of_time(),
            LimitPeriod::Day => day,
            LimitPeriod::Month => day.with_day0(0).unwrap_or(day),
        };
        start.and_hms_opt(0, 0, 0).expect("midnight exists")
    }
}

/// How often what other instances and the CLI changed is read again: the
/// key table, and the used totals behind the limits.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// A user's limits, as the key table holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub tokens: Option<i64>,
    pub requests: Option<i64>,
    /// USD per period, in nano-dollars.
    pub budget: Option<i64>,
    pub period: LimitPeriod,
    pub rpm: Option<i64>,
    /// Requests the user may have running at once.
    pub parallel: Option<i64>,
}

impl Limits {
    pub fn counts_usage(&self) -> bool {
        self.tokens.is_some() || self.requests.is_some() || self.budget.is_some()
    }

    /// Whether there is any limit at all: without one, nothing is
    /// counted in a ledger.
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.parallel.is_some() || self.counts_usage()
    }
}

#[derive(Debug, Default)]
pub struct Ledger {
    used_tokens: AtomicI64,
    used_requests: AtomicI64,
    reserved_tokens: AtomicI64,
    reserved_requests: AtomicI64,
    used_nano_usd: AtomicI64,
    reserved_nano_usd: AtomicI64,
    /// Start times of the requests admitted in the last minute (rpm),
    /// and this instance's share of the rpm.
    recent: Mutex<Window>,
    /// The parallel slots: this instance's share and the requests running.
    slots: Slots,
    /// Requests admitted so far: the lease keeper tells an idle share by it.
    admitted: AtomicU64,
    /// Whether its shares are leased (several instances), and this
    /// instance's shares of the request limit, the token limit and the
    /// budget: what its in-flight requests may hold reserved at once.
    leased: bool,
    usage_shares: [AtomicI64; 3],
}

/// A sliding minute's admissions, and how many of the rpm this instance
/// may use (`UNSHARED` on one instance alone: all of it).
#[derive(Debug)]
struct Window {
    times: VecDeque<Instant>,
    share: i64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            times: VecDeque::new(),
            share: UNSHARED,
        }
    }
}

impl Window {
    /// Drops the admissions a minute old at `at`; how many are left.
    fn prune(&mut self, at: Instant) -> i64 {
        while self
            .times
            .front()
            .is_some_and(|t| at.saturating_duration_since(*t) >= MINUTE)
        {
            self.times.pop_front();
        }
        self.times.len() as i64
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// The share of a limit an instance holds when it is the only one.
pub const UNSHARED: i64 = u32::MAX as i64;

/// The parallel slots, in one word so that taking one checks the limit
/// and this instance's share at once: the share in the high half, the
/// requests running in the low.
#[derive(Debug)]
struct Slots(AtomicU64);

impl Default for Slots {
    fn default() -> Self {
        Slots(AtomicU64::new((UNSHARED as u64) << 32))
    }
}

impl Slots {
    fn split(word: u64) -> (i64, i64) {
        ((word >> 32) as i64, (word & 0xffff_ffff) as i64)
    }

    /// Sets the share with `f(share, running)`, atomically; the new share.
    fn set_share(&self, f: impl Fn(i64, i64) -> i64) -> i64 {
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            let (share, running) = Slots::split(word);
            let next = f(share, running).clamp(0, UNSHARED) as u64;
            match self.0.compare_exchange_weak(
                word,
                (next << 32) | running as u64,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return next as i64,
                Err(now) => word = now,
            }
        }
    }
}

/// One running request of a user with a parallel limit; the slot is free
/// again when this is dropped, however the request ends.
#[derive(Debug)]
pub struct Running(Arc<Ledger>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.slots.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A token or request limit is used up.
    Quota(String),
    /// Too many requests this minute; retry after this many seconds.
    Rate { message: String, retry_after: u64 },
    /// The limit admits it, but this instance's share of it is used up:
    /// the lease keeper may get more from the database.
    Share(Shortfall),
}

/// The limits instances share through leases (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareKind {
    Parallel,
    Rpm,
    /// Of a request limit, a token limit, a USD budget: what in-flight
    /// requests may hold reserved at once.
    Requests,
    Tokens,
    Usd,
}

impl ShareKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareKind::Parallel => "parallel",
            ShareKind::Rpm => "rpm",
            ShareKind::Requests => "requests",
            ShareKind::Tokens => "tokens",
            ShareKind::Usd => "usd",
        }
    }

    /// Whether it is a share of a limit per period (what is committed
    /// counts against it too).
    pub fn of_usage(self) -> bool {
        matches!(
            self,
            ShareKind::Requests | ShareKind::Tokens | ShareKind::Usd
        )
    }

    fn usage_index(self) -> usize {
        match self {
            ShareKind::Requests => 0,
            ShareKind::Tokens => 1,
            _ => 2,
        }
    }
}

/// A request the limit admits but this instance's share does not.
#[derive(Debug, Clone)]
pub struct Shortfall {
    pub ledger: Arc<Ledger>,
    pub kind: ShareKind,
    pub limit: i64,
    /// What the request needs beyond what this instance holds reserved
    /// (1 of an rpm or parallel limit).
    pub need: i64,
    /// The limit's period (of a usage limit).
    pub period: LimitPeriod,
    /// Whose limit: `user:<name>` or `team:<name>`.
    pub subject: String,
    /// The team's name, when it is a team's limit.
    pub team: Option<String>,
}

impl PartialEq for Shortfall {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.ledger, &other.ledger)
            && (self.kind, self.limit, &self.subject) == (other.kind, other.limit, &other.subject)
    }
}

impl Shortfall {
    fn of(account: &Account, kind: ShareKind, limit: i64) -> Shortfall {
        let subject = match account.team {
            Some(t) => format!("team:{t}"),
            None => format!("user:{}", account.user),
        };
        Shortfall {
            ledger: account.ledger.clone(),
            kind,
            limit,
            need: 1,
            period: account.limits.period,
            subject,
            team: account.team.map(str::to_owned),
        }
    }

    /// The name whose usage counts: the user's or the team's.
    pub fn name(&self) -> &str {
        self.subject
            .split_once(':')
            .map_or(&*self.subject, |(_, n)| n)
    }

    /// The refusal of a usage limit's shortfall when no share is to be
    /// had: it is used up, or held by requests in flight elsewhere.
    pub fn quota_refusal(&self, now: NaiveDateTime) -> Refusal {
        let whose = self.team.as_deref().map_or(Whose::Own, Whose::Team);
        let what = match self.kind {
            ShareKind::Requests => format!("request limit of {}", self.limit),
            ShareKind::Tokens => format!("token limit of {}", self.limit),
            _ => format!("budget of {}", usd_text(self.limit)),
        };
        Refusal::Quota(quota_message(&what, self.period, now, whose))
    }

    /// The refusal of an rpm shortfall when no share is to be had: the
    /// rpm is used up across the instances.
    pub fn rate_refusal(&self, retry_after: u64) -> Refusal {
        let whose = self.team.as_deref().map_or(Whose::Own, Whose::Team);
        rate_refusal(self.limit, retry_after, whose)
    }
}

fn rate_refusal(rpm: i64, retry_after: u64, whose: Whose) -> Refusal {
    Refusal::Rate {
        message: format!(
            "Rate limit reached: {}{rpm} requests per minute. Try again in {retry_after} s.",
            whose.prefix()
        ),
        retry_after,
    }
}

/// Why a request could not start: a parallel limit is full (the limit,
/// and the team's name when it is the team's), or this instance's share
/// of it is.
#[derive(Debug)]
pub enum Busy {
    Full(i64, Option<String>),
    Short(Shortfall),
}

/// What an admitted request holds of one ledger.
#[derive(Debug)]
struct Part {
    ledger: Arc<Ledger>,
    tokens: i64,
    requests: i64,
    nano_usd: i64,
}

impl Drop for Part {
    fn drop(&mut self) {
        self.ledger
            .reserved_tokens
            .fetch_sub(self.tokens, Ordering::AcqRel);
        self.ledger
            .reserved_requests
            .fetch_sub(self.requests, Ordering::AcqRel);
        self.ledger
            .reserved_nano_usd
            .fetch_sub(self.nano_usd, Ordering::AcqRel);
    }
}

/// At most two of a thing, one per account a request passes (its user's
/// and its team's), held inline: an admitted request allocates nothing.
#[derive(Debug)]
pub struct Pair<T>([Option<T>; 2]);

impl<T> Default for Pair<T> {
    fn default() -> Self {
        Pair([None, None])
    }
}

impl<T> Pair<T> {
    fn push(&mut self, v: T) {
        let free = self.0.iter_mut().find(|s| s.is_none());
        *free.expect("a request passes at most two accounts") = Some(v);
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.0.iter_mut().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// Gives up what it holds (dropping each).
    pub fn clear(&mut self) {
        self.0 = [None, None];
    }
}

/// What an admitted request holds of its user's ledger and (when the user
/// is in a team) its team's: taken from both or neither, given back to
/// both when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    parts: Pair<Part>,
}

impl Reservation {
    /// The request's tokens are known: hold exactly those until they are
    /// committed and re-read, so that a batch gathering for a while neither
    /// refuses others for a guess nor lets them use what was spent.
    pub fn hold(&mut self, tokens: i64) {
        for p in self.parts.iter_mut() {
            if p.tokens == 0 {
                continue; // not counted against a token limit
            }
            p.ledger
                .reserved_tokens
                .fetch_add(tokens - p.tokens, Ordering::AcqRel);
            p.tokens = tokens;
        }
    }

    /// What it holds: (tokens, nano-USD), the most of any ledger's.
    pub fn held(&self) -> (i64, i64) {
        self.parts
            .iter()
            .fold((0, 0), |(t, u), p| (t.max(p.tokens), u.max(p.nano_usd)))
    }

    /// The request's cost is known (the usage writer priced it): hold
    /// exactly that until it is committed and re-read.
    pub fn hold_cost(&mut self, nano_usd: i64) {
        for p in self.parts.iter_mut() {
            if p.nano_usd == 0 {
                continue; // not counted against a budget
            }
            p.ledger
                .reserved_nano_usd
                .fetch_add(nano_usd - p.nano_usd, Ordering::AcqRel);
            p.nano_usd = nano_usd;
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Its request is committed with what it holds (its real usage, or
    /// what waits for it): that leaves this instance's shares of limits.
    pub fn committed(&self) {
        for p in self.parts.iter() {
            p.ledger.consume([p.requests, p.tokens, p.nano_usd]);
        }
    }
}

/// Why `reserve` took nothing.
enum Lack {
    /// The limit has too little left.
    Limit,
    /// The limit has enough, this instance's share of it not: it needs
    /// this much more than it holds reserved.
    Share(i64),
}

/// Takes up to `want` from what is left of `limit`, atomically; nothing
/// when nothing is left, or less than `floor` (what the request is known
/// to cost whatever it does: a prompt given by reference), or (several
/// instances) more than this instance's `share` allows.
fn reserve(
    used: &AtomicI64,
    reserved: &AtomicI64,
    share: Option<&AtomicI64>,
    (limit, want, floor): (i64, i64, i64),
) -> Result<i64, Lack> {
    let mut current = reserved.load(Ordering::SeqCst);
    loop {
        let left = limit
            .saturating_sub(used.load(Ordering::Acquire))
            .saturating_sub(current);
        if left <= 0 || left < floor {
            return Err(Lack::Limit);
        }
        let take = want.max(floor).clamp(1, left);
        if share.is_some_and(|s| current + take > s.load(Ordering::SeqCst)) {
            return Err(Lack::Share(take));
        }
        match reserved.compare_exchange_weak(
            current,
            current + take,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => {
                // A share lowered meanwhile (given back) wins: see
                // `Ledger::shrink`.
                if share.is_some_and(|s| current + take > s.load(Ordering::SeqCst)) {
                    reserved.fetch_sub(take, Ordering::SeqCst);
                    return Err(Lack::Share(take));
                }
                return Ok(take);
            }
            Err(now) => current = now,
        }
    }
}

/// When the period that contains `now` ends; `None` for `total`.
pub fn next_reset(period: LimitPeriod, now: NaiveDateTime) -> Option<NaiveDateTime> {
    let today = now.date();
    let next = match period {
        LimitPeriod::Total => return None,
        LimitPeriod::Day => today + Days::days(1),
        LimitPeriod::Month => {
            let first = today.with_day(1)?;
            first.checked_add_months(chrono::Months::new(1))?
        }
    };
    next.and_hms_opt(0, 0, 0)
}

/// Whose limit refused a request: the caller's own, or their team's.
#[derive(Debug, Clone, Copy)]
enum Whose<'a> {
    Own,
    Team(&'a str),
}

impl Whose<'_> {
    fn prefix(self) -> String {
        match self {
            Whose::Own => String::new(),
            Whose::Team(t) => format!("your team `{t}`'s "),
        }
    }
}

/// `limit`: what is used up, as said (`token limit of 500`, `budget of $5.00`).
fn quota_message(limit: &str, period: LimitPeriod, now: NaiveDateTime, whose: Whose) -> String {
    let whose_limit = match whose {
        Whose::Own => format!("You have used your {limit}"),
        Whose::Team(t) => format!("Your team `{t}` has used its {limit}"),
    };
    match next_reset(period, now) {
        Some(reset) => format!(
            "{whose_limit} for this {}; it resets at {}.",
            period.as_str(),
            crate::db::rfc3339(reset)
        ),
        None => format!("{whose_limit}; ask the gateway's admin for a top-up."),
    }
}

/// A request's place in a ledger's one-minute window; given back when a
/// request is refused by another ledger (its team's, or its own), so a
/// refused request uses up no limit.
#[derive(Debug)]
struct RateSlot {
    ledger: Arc<Ledger>,
    at: Instant,
}

impl RateSlot {
    fn give_back(self) {
        let mut window = self.ledger.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = window.times.iter().rposition(|t| *t == self.at) {
            window.times.remove(i);
        }
    }
}

/// One ledger whose limits a request must pass: the caller's own, or
/// their team's (named).
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub limits: &'a Limits,
    pub ledger: &'a Arc<Ledger>,
    pub team: Option<&'a str>,
    /// The user's name (whose request it is, in either account).
    pub user: &'a str,
}

/// Admits a request against every account it must pass (its user's, then
/// its team's), all or nothing: a refusal by one gives back what the
/// others took (their reservations and rate slots). Each ledger's
/// reservation is taken atomically, so racing requests cannot both fit
/// one ledger's last dollar.
pub fn admit(
    accounts: &[Option<Account<'_>>],
    want: Want,
    now: NaiveDateTime,
    at: Instant,
) -> Result<Option<Reservation>, Refusal> {
    let mut held = Reservation::default();
    let mut slots = Pair::default();
    for a in accounts.iter().flatten() {
        match a.ledger.admit_one(a, want, now, at) {
            Ok((part, slot)) => {
                part.into_iter().for_each(|p| held.parts.push(p));
                slot.into_iter().for_each(|s| slots.push(s));
            }
            Err(refusal) => {
                slots.0.into_iter().flatten().for_each(RateSlot::give_back);
                return Err(refusal);
            }
        }
    }
    Ok((!held.is_empty()).then_some(held))
}

/// Takes a parallel slot of every account with a parallel limit, or
/// says which one has none free.
pub fn start(accounts: &[Option<Account<'_>>]) -> Result<Pair<Running>, Busy> {
    let mut running = Pair::default();
    for a in accounts.iter().flatten() {
        if let Some(limit) = a.limits.parallel {
            match a.ledger.start(limit) {
                Ok(r) => running.push(r),
                Err(false) => return Err(Busy::Full(limit, a.team.map(str::to_owned))),
                Err(true) => return Err(Busy::Short(Shortfall::of(a, ShareKind::Parallel, limit))),
            }
        }
    }
    Ok(running)
}

/// `$5.00`, or more decimals where a budget has them.
pub fn usd_text(nano_usd: i64) -> String {
    let cents = nano_usd / 10_000_000;
    if nano_usd % 10_000_000 == 0 {
        format!("${}.{:02}", cents / 100, cents % 100)
    } else {
        format!("${:.9}", nano_usd as f64 / 1e9)
            .trim_end_matches('0')
            .to_owned()
    }
}

/// What is left of a caller's limits: (limit, remaining, seconds until
/// it resets) of requests (per minute where the caller has an rpm, else
/// per period), and (limit, remaining) of tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Left {
    pub requests: Option<(i64, i64, Option<u64>)>,
    pub tokens: Option<(i64, i64)>,
}

/// What a request may cost at most: reserved from its limits. The
/// `floor`s are what it costs at least (a prompt given by reference, whose
/// size the gateway knows): a request is admitted only while that much is
/// left, so that concurrent requests cannot spend it several times over.
/// What is above the floor (the reply) may be capped at what is left.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// Whether it uses up a request limit (requests that reach a model).
    pub request: bool,
    pub tokens: i64,
    pub nano_usd: i64,
    pub floor_tokens: i64,
    pub floor_nano_usd: i64,
}

impl Ledger {
    /// Takes one of the user's `limit` parallel slots; `Err(true)` when
    /// the limit has one free but this instance's share does not.
    pub fn start(self: &Arc<Self>, limit: i64) -> Result<Running, bool> {
        let mut word = self.slots.0.load(Ordering::Acquire);
        loop {
            let (share, running) = Slots::split(word);
            if running >= limit {
                return Err(false);
            }
            if running >= share {
                return Err(true);
            }
            match self.slots.0.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.note_admission();
                    return Ok(Running(self.clone()));
                }
                Err(now) => word = now,
            }
        }
    }

    /// Admits a request against this ledger alone (the unit tests').
    #[cfg(test)]
    fn admit(
        self: &Arc<Self>,
        limits: &Limits,
        want: Want,
        now: NaiveDateTime,
        at: Instant,
    ) -> Result<Option<Reservation>, Refusal> {
        let account = Account {
            limits,
            ledger: self,
            team: None,
            user: "test",
        };
        admit(&[Some(account)], want, now, at)
    }

    /// Takes what a request may use (`want`: tokens, and what they cost;
    /// 0: one that uses none, like a model list) of this ledger, or says
    /// why not.
    fn admit_one(
        self: &Arc<Self>,
        account: &Account,
        want: Want,
        now: NaiveDateTime,
        at: Instant,
    ) -> Result<(Option<Part>, Option<RateSlot>), Refusal> {
        let (limits, whose) = (account.limits, account.team.map_or(Whose::Own, Whose::Team));
        let slot = match limits.rpm {
            Some(rpm) => Some(self.take_rate_slot(rpm, at, account)?),
            None => None,
        };
        if !limits.counts_usage() {
            return Ok((None, slot));
        }
        let period = limits.period;
        let quota = |limit: String| Refusal::Quota(quota_message(&limit, period, now, whose));
        let mut held = Part {
            ledger: self.clone(),
            tokens: 0,
            requests: 0,
            nano_usd: 0,
        };
        let lacks = |kind: ShareKind, limit: i64, what: String| {
            move |lack| match lack {
                Lack::Limit => quota(what),
                Lack::Share(take) => Refusal::Share(Shortfall {
                    need: take,
                    ..Shortfall::of(account, kind, limit)
                }),
            }
        };
        if let (Some(limit), true) = (limits.requests, want.request) {
            let what = format!("request limit of {limit}");
            held.requests = self
                .reserve(ShareKind::Requests, (limit, 1, 1))
                .map_err(lacks(ShareKind::Requests, limit, what))?;
        }
        // Dropping `held` on a refusal gives back what it took so far.
        if let (Some(limit), true) = (limits.tokens, want.tokens > 0) {
            let what = format!("token limit of {limit}");
            held.tokens = self
                .reserve(ShareKind::Tokens, (limit, want.tokens, want.floor_tokens))
                .map_err(lacks(ShareKind::Tokens, limit, what))?;
        }
        if let (Some(limit), true) = (limits.budget, want.nano_usd > 0) {
            let what = format!("budget of {}", usd_text(limit));
            held.nano_usd = self
                .reserve(ShareKind::Usd, (limit, want.nano_usd, want.floor_nano_usd))
                .map_err(lacks(ShareKind::Usd, limit, what))?;
        }
        self.note_admission();
        Ok((Some(held), slot))
    }

    /// A sliding one-minute window: the (N+1)th request within any 60 s is
    /// refused, with the seconds until the oldest one leaves the window.
    fn take_rate_slot(
        self: &Arc<Self>,
        rpm: i64,
        at: Instant,
        account: &Account,
    ) -> Result<RateSlot, Refusal> {
        let mut window = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let used = window.prune(at);
        if used >= rpm.max(0) {
            let wait = window
                .times
                .front()
                .map_or(MINUTE, |t| MINUTE - at.saturating_duration_since(*t));
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let whose = account.team.map_or(Whose::Own, Whose::Team);
            return Err(rate_refusal(rpm, retry_after, whose));
        }
        if used >= window.share {
            return Err(Refusal::Share(Shortfall::of(account, ShareKind::Rpm, rpm)));
        }
        window.times.push_back(at);
        self.note_admission();
        Ok(RateSlot {
            ledger: self.clone(),
            at,
        })
    }

    /// What is left of `limits` now, for the caller to pace itself by.
    pub fn left(&self, limits: &Limits, now: NaiveDateTime, at: Instant) -> Left {
        let left = |used: &AtomicI64, reserved: &AtomicI64, limit: i64| {
            limit
                .saturating_sub(used.load(Ordering::Acquire))
                .saturating_sub(reserved.load(Ordering::Acquire))
                .max(0)
        };
        let requests = match (limits.rpm, limits.requests) {
            (Some(rpm), _) => {
                let window = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                let recent = &window.times;
                let running = recent
                    .iter()
                    .filter(|t| at.saturating_duration_since(**t) < MINUTE)
                    .count() as i64;
                let reset = recent
                    .iter()
                    .find(|t| at.saturating_duration_since(**t) < MINUTE)
                    .map_or(0, |t| {
                        (MINUTE - at.saturating_duration_since(*t)).as_secs() + 1
                    });
                Some((rpm, (rpm - running).max(0), Some(reset)))
            }
            (None, Some(limit)) => {
                let reset = next_reset(limits.period, now)
                    .map(|r| u64::try_from((r - now).num_seconds()).unwrap_or(0));
                Some((
                    limit,
                    left(&self.used_requests, &self.reserved_requests, limit),
                    reset,
                ))
            }
            (None, None) => None,
        };
        Left {
            requests,
            tokens: limits
                .tokens
                .map(|limit| (limit, left(&self.used_tokens, &self.reserved_tokens, limit))),
        }
    }

    /// The used and reserved counters of a usage kind, and its share.
    fn counters(&self, kind: ShareKind) -> (&AtomicI64, &AtomicI64, &AtomicI64) {
        let share = &self.usage_shares[kind.usage_index()];
        match kind {
            ShareKind::Requests => (&self.used_requests, &self.reserved_requests, share),
            ShareKind::Tokens => (&self.used_tokens, &self.reserved_tokens, share),
            _ => (&self.used_nano_usd, &self.reserved_nano_usd, share),
        }
    }

    fn reserve(&self, kind: ShareKind, amounts: (i64, i64, i64)) -> Result<i64, Lack> {
        let (used, reserved, share) = self.counters(kind);
        reserve(used, reserved, self.leased.then_some(share), amounts)
    }

    /// A committed reservation's amounts (requests, tokens, nano-USD) are
    /// in the database's totals now: they leave this instance's shares.
    fn consume(&self, amounts: [i64; 3]) {
        if self.leased {
            for (share, n) in self.usage_shares.iter().zip(amounts) {
                share.fetch_sub(n, Ordering::SeqCst);
            }
        }
    }

    /// This instance's share of `kind` and how much of it is in use at
    /// `at` (requests running, admitted in the last minute, or reserved).
    pub fn share(&self, kind: ShareKind, at: Instant) -> (i64, i64) {
        match kind {
            k @ (ShareKind::Requests | ShareKind::Tokens | ShareKind::Usd) => {
                let (_, reserved, share) = self.counters(k);
                (
                    share.load(Ordering::SeqCst),
                    reserved.load(Ordering::SeqCst),
                )
            }
            ShareKind::Parallel => Slots::split(self.slots.0.load(Ordering::Acquire)),
            ShareKind::Rpm => {
                let mut window = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                let used = window.prune(at);
                (window.share, used)
            }
        }
    }

    /// Raises this instance's share of `kind` to at least `n` (the
    /// database granted it).
    pub fn grant(&self, kind: ShareKind, n: i64) {
        match kind {
            k @ (ShareKind::Requests | ShareKind::Tokens | ShareKind::Usd) => {
                self.counters(k).2.fetch_max(n, Ordering::SeqCst);
            }
            ShareKind::Parallel => {
                self.slots.set_share(|share, _| share.max(n));
            }
            ShareKind::Rpm => {
                let mut window = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                window.share = window.share.max(n);
            }
        }
    }

    /// Lowers this instance's share of `kind` to what is in use at `at`,
    /// atomically with admissions; that share.
    pub fn shrink(&self, kind: ShareKind, at: Instant) -> i64 {
        match kind {
            k @ (ShareKind::Requests | ShareKind::Tokens | ShareKind::Usd) => {
                // Lowered first, then the reservations read again: one taken
                // meanwhile either sees the lower share or is seen here
                // (both sides are sequentially consistent).
                let (_, reserved, share) = self.counters(k);
                let before = reserved.load(Ordering::SeqCst);
                let old = share.swap(before, Ordering::SeqCst);
                if reserved.load(Ordering::SeqCst) != before {
                    share.fetch_max(old, Ordering::SeqCst);
                    return share.load(Ordering::SeqCst);
                }
                before
            }
            ShareKind::Parallel => self.slots.set_share(|_, running| running),
            ShareKind::Rpm => {
                let mut window = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                window.share = window.prune(at);
                window.share
            }
        }
    }

    /// How long ago at `at` the last request within the minute's rpm
    /// window was admitted, if one was.
    pub fn since_last(&self, at: Instant) -> Option<Duration> {
        let window = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        window
            .times
            .back()
            .map(|t| at.saturating_duration_since(*t))
    }

    /// Counts an admission, for the lease keeper alone: one instance on
    /// its own writes no shared counter per request.
    fn note_admission(&self) {
        if self.leased {
            self.admitted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many requests this ledger has admitted since it was made
    /// (several instances).
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }

    /// A ledger that holds no share of its rpm and parallel limits until
    /// the database grants one (several instances).
    fn leased() -> Ledger {
        let ledger = Ledger {
            leased: true,
            ..Ledger::default()
        };
        ledger.slots.set_share(|_, _| 0);
        ledger
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .share = 0;
        ledger
    }

    /// Sets what the database says was used this period.
    pub fn set_used(&self, requests: i64, tokens: i64, nano_usd: i64) {
        self.used_requests.store(requests, Ordering::Release);
        self.used_tokens.store(tokens, Ordering::Release);
        self.used_nano_usd.store(nano_usd, Ordering::Release);
    }

    /// (used, reserved) tokens and requests, for tests and `/metrics`.
    pub fn snapshot(&self) -> [i64; 4] {
        [
            self.used_tokens.load(Ordering::Acquire),
            self.reserved_tokens.load(Ordering::Acquire),
            self.used_requests.load(Ordering::Acquire),
            self.reserved_requests.load(Ordering::Acquire),
        ]
    }
}

/// Every user's and every team's ledger with their limits, kept across
/// key-table reloads (a rotated key or a changed limit keeps what a user
/// or team used and reserved). The key table and the usage writer both
/// call down into this one owner (the writer refreshes it:
/// `usage::daily::refresh`).
#[derive(Default)]
pub struct Ledgers {
    users: ByName,
    teams: ByName,
}

impl Ledgers {
    /// Ledgers made from now on hold no share of their rpm and parallel
    /// limits until leased (several instances share the database).
    pub fn lease_shares(&self) {
        self.users.leased.store(true, Ordering::Release);
        self.teams.leased.store(true, Ordering::Release);
    }

    pub fn users(&self) -> &ByName {
        &self.users
    }

    pub fn teams(&self) -> &ByName {
        &self.teams
    }

    /// Whether any user's or team's usage counts against a limit.
    pub fn any_limited(&self) -> bool {
        self.users.any_limited() || self.teams.any_limited()
    }
}

/// The ledgers of users (or of teams) by name.
#[derive(Default)]
pub struct ByName {
    /// Those with any limit: a user without one has no ledger of their own.
    users: Mutex<HashMap<String, (Limits, Arc<Ledger>)>>,
    unlimited: Arc<Ledger>,
    /// Whether new ledgers wait for leased shares (`Ledgers::lease_shares`).
    leased: AtomicBool,
}

impl ByName {
    fn fresh(&self) -> Arc<Ledger> {
        Arc::new(if self.leased.load(Ordering::Acquire) {
            Ledger::leased()
        } else {
            Ledger::default()
        })
    }

    /// A user's ledger: their own if they have any limit (kept in the
    /// map by name, across reloads), else the one shared by all users
    /// without limits, in which nothing is counted. `kept`: the one they
    /// had, if any.
    fn ledger_of(
        &self,
        map: &mut HashMap<String, (Limits, Arc<Ledger>)>,
        name: &str,
        limits: Limits,
        kept: Option<Arc<Ledger>>,
    ) -> Arc<Ledger> {
        if !limits.any() {
            return self.unlimited.clone();
        }
        let ledger = kept.unwrap_or_else(|| self.fresh());
        map.insert(name.to_owned(), (limits, ledger.clone()));
        ledger
    }

    /// Takes the users as they are now (name and limits); returns each
    /// one's ledger in their order, made for those that are new. Users
    /// not given are dropped.
    pub fn update<'a>(&self, users: impl Iterator<Item = (&'a str, Limits)>) -> Vec<Arc<Ledger>> {
        let mut map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let mut old = std::mem::take(&mut *map);
        users
            .map(|(name, limits)| {
                let kept = old.remove(name).map(|(_, l)| l);
                self.ledger_of(&mut map, name, limits, kept)
            })
            .collect()
    }

    /// Drops the ledgers of `gone`, then takes `changed` (name and limits)
    /// as `update` does, leaving everyone else alone; returns the changed
    /// users' ledgers in their order.
    pub fn change<'a>(
        &self,
        gone: impl Iterator<Item = &'a str>,
        changed: impl Iterator<Item = (&'a str, Limits)>,
    ) -> Vec<Arc<Ledger>> {
        let mut map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept: HashMap<String, Arc<Ledger>> = HashMap::new();
        for name in gone {
            if let Some((_, ledger)) = map.remove(name) {
                kept.insert(name.to_owned(), ledger);
            }
        }
        changed
            .map(|(name, limits)| {
                let had = kept
                    .remove(name)
                    .or_else(|| map.remove(name).map(|(_, l)| l));
                self.ledger_of(&mut map, name, limits, had)
            })
            .collect()
    }

    /// The limited users (name, limits, ledger), a snapshot taken under
    /// the lock, so that no lock is held while their usage is read.
    pub fn limited(&self) -> Vec<(String, Limits, Arc<Ledger>)> {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter(|(_, (limits, _))| limits.counts_usage())
            .map(|(n, (limits, ledger))| (n.clone(), *limits, ledger.clone()))
            .collect()
    }

    /// The ledger of `name`, if the key table knows them.
    pub fn get(&self, name: &str) -> Option<Arc<Ledger>> {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).map(|(_, ledger)| ledger.clone())
    }

    /// Whether any user's usage counts against a limit.
    pub fn any_limited(&self) -> bool {
        let map = self.users.lock().unwrap_or_else(|e| e.into_inner());
        map.values().any(|(limits, _)| limits.counts_usage())
    }
}

/// A cheap, conservative guess of a request's prompt tokens (no tokenizer
/// on the request path): JSON bodies run at about four bytes a token, and
/// their keys and punctuation make this an over-estimate.
pub fn prompt_guess(body_len: usize) -> i64 {
    i64::try_from(body_len / 4).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn period_starts_and_names() {
        let now = at("2026-11-22 10:00:00");
        assert_eq!(LimitPeriod::Day.start(now), at("2026-11-22 00:00:00"));
        assert_eq!(LimitPeriod::Month.start(now), at("2026-11-01 00:00:00"));
        assert_eq!(LimitPeriod::Total.start(now), at("1970-01-01 00:00:00"));
        for name in LimitPeriod::NAMES {
            assert_eq!(LimitPeriod::parse(name).unwrap().as_str(), name);
        }
        assert!(LimitPeriod::parse("week").is_err());
    }

    const NOW: &str = "2026-11-22 10:00:00";

    fn want(tokens: i64) -> Want {
        Want {
            request: true,
            tokens,
            ..Want::default()
        }
    }

    #[test]
    fn a_budget_is_reserved_like_tokens_and_named_when_spent() {
        let ledger = Arc::new(Ledger::default());
        // $1 a month; $0.95 spent.
        ledger.set_used(0, 0, 950_000_000);
        let limits = Limits {
            budget: Some(1_000_000_000),
            period: LimitPeriod::Month,
            ..Default::default()
        };
        let cost = |nano_usd| Want {
            request: true,
            tokens: 10,
            nano_usd,
            ..Want::default()
        };
        let admitted: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..30)
                .map(|_| {
                    s.spawn(|| ledger.admit(&limits, cost(10_000_000), at(NOW), Instant::now()))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut held: Vec<_> = admitted
            .into_iter()
            .filter_map(Result::ok)
            .flatten()
            .collect();
        assert_eq!(held.len(), 5, "$0.05 left, $0.01 each");
        // One finished for less: what it did not use is free again.
        held[0].hold_cost(1_000_000);
        assert!(ledger
            .admit(&limits, cost(9_000_000), at(NOW), Instant::now())
            .is_ok());
        drop(held);
        ledger.set_used(0, 0, 1_000_000_000);
        let refused = ledger
            .admit(&limits, cost(1), at(NOW), Instant::now())
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal::Quota(
                "You have used your budget of $1.00 for this month; it resets at 2026-12-01T00:00:00Z."
                    .into()
            )
        );
        assert_eq!(usd_text(12_500_000_000), "$12.50");
        assert_eq!(usd_text(1_500), "$0.0000015");
    }

    fn tokens(limit: i64) -> Limits {
        Limits {
            tokens: Some(limit),
            period: LimitPeriod::Day,
            ..Default::default()
        }
    }

    #[test]
    fn reservations_never_exceed_what_is_left_under_contention() {
        let ledger = Arc::new(Ledger::default());
        ledger.set_used(0, 950, 0);
        let limits = tokens(1000);
        let admitted: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..50)
                .map(|_| s.spawn(|| ledger.admit(&limits, want(10), at(NOW), Instant::now())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let held: Vec<_> = admitted.into_iter().filter_map(Result::ok).collect();
        assert_eq!(held.len(), 5, "50 left, 10 each");
        assert_eq!(ledger.snapshot()[1], 50);
        drop(held);
        assert_eq!(ledger.snapshot()[1], 0, "reservations are given back");
    }

    #[test]
    fn the_last_reservation_is_capped_at_what_is_left() {
        let ledger = Arc::new(Ledger::default());
        ledger.set_used(0, 990, 0);
        let r = ledger
            .admit(&tokens(1000), want(500), at(NOW), Instant::now())
            .unwrap();
        assert_eq!(r.unwrap().held().0, 10);
        ledger.set_used(0, 1000, 0);
        let refused = ledger
            .admit(&tokens(1000), want(1), at(NOW), Instant::now())
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal::Quota(
                "You have used your token limit of 1000 for this day; it resets at 2026-11-23T00:00:00Z."
                    .into()
            )
        );
    }

    #[test]
    fn a_finished_request_holds_what_it_used_until_committed() {
        let ledger = Arc::new(Ledger::default());
        let limits = tokens(1000);
        let mut r = ledger
            .admit(&limits, want(500), at(NOW), Instant::now())
            .unwrap()
            .unwrap();
        // It used less than its guess: others may have the rest at once.
        r.hold(100);
        assert_eq!(ledger.snapshot()[1], 100);
        assert!(ledger
            .admit(&limits, want(900), at(NOW), Instant::now())
            .is_ok());
        // More than its guess: that counts too, before the commit.
        r.hold(1200);
        assert!(ledger
            .admit(&limits, want(1), at(NOW), Instant::now())
            .is_err());
        drop(r);
        assert_eq!(ledger.snapshot()[1], 0);
    }

    /// Prompts given by reference: with N at once against a budget that
    /// admits one, one runs; the reply part alone may still be capped.
    #[test]
    fn a_known_floor_must_fit_whole() {
        let ledger = Arc::new(Ledger::default());
        let limits = Limits {
            budget: Some(300_000_000),
            requests: Some(100),
            ..Default::default()
        };
        let by_reference = Want {
            request: true,
            nano_usd: 290_000_000,
            floor_nano_usd: 250_000_000,
            ..Want::default()
        };
        let admitted: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..20)
                .map(|_| s.spawn(|| ledger.admit(&limits, by_reference, at(NOW), Instant::now())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let held: Vec<_> = admitted.into_iter().filter_map(Result::ok).collect();
        assert_eq!(held.len(), 1, "one runs");
        assert_eq!(
            ledger.snapshot()[3],
            1,
            "the refused gave their request back"
        );
        drop(held);
        // Without a floor the last one runs with what is left.
        let guess = Want {
            floor_nano_usd: 0,
            ..by_reference
        };
        let _a = ledger
            .admit(&limits, guess, at(NOW), Instant::now())
            .unwrap();
        assert!(ledger
            .admit(&limits, guess, at(NOW), Instant::now())
            .is_ok());
    }

    /// Model lists and object reads do not use up a request limit.
    #[test]
    fn only_requests_that_reach_a_model_use_up_the_limit() {
        let ledger = Arc::new(Ledger::default());
        let limits = Limits {
            requests: Some(1),
            ..Default::default()
        };
        for _ in 0..5 {
            assert!(ledger
                .admit(&limits, Want::default(), at(NOW), Instant::now())
                .is_ok());
        }
        let _one = ledger
            .admit(&limits, want(0), at(NOW), Instant::now())
            .unwrap();
        assert!(ledger
            .admit(&limits, want(0), at(NOW), Instant::now())
            .is_err());
        assert!(ledger
            .admit(&limits, Want::default(), at(NOW), Instant::now())
            .is_ok());
    }

    #[test]
    fn a_refused_token_check_gives_back_the_request_slot() {
        let ledger = Arc::new(Ledger::default());
        ledger.set_used(0, 1000, 0);
        let limits = Limits {
            requests: Some(10),
            ..tokens(1000)
        };
        assert!(ledger
            .admit(&limits, want(1), at(NOW), Instant::now())
            .is_err());
        assert_eq!(ledger.snapshot()[3], 0);
    }

    #[test]
    fn request_limits_and_total_period_messages() {
        let ledger = Arc::new(Ledger::default());
        let limits = Limits {
            requests: Some(2),
            ..Default::default()
        };
        let a = ledger
            .admit(&limits, want(0), at(NOW), Instant::now())
            .unwrap();
        let _b = ledger
            .admit(&limits, want(0), at(NOW), Instant::now())
            .unwrap();
        let Refusal::Quota(msg) = ledger
            .admit(&limits, want(0), at(NOW), Instant::now())
            .unwrap_err()
        else {
            panic!("quota expected")
        };
        assert!(
            msg.contains("request limit of 2;") && msg.contains("top-up"),
            "{msg}"
        );
        drop(a);
        assert!(ledger
            .admit(&limits, want(0), at(NOW), Instant::now())
            .is_ok());
    }

    #[test]
    fn rpm_is_a_sliding_minute_with_retry_after() {
        let ledger = Arc::new(Ledger::default());
        let limits = Limits {
            rpm: Some(3),
            ..Default::default()
        };
        let t0 = Instant::now();
        for s in [0, 10, 20] {
            assert!(ledger
                .admit(&limits, want(0), at(NOW), t0 + Duration::from_secs(s))
                .is_ok());
        }
        let refused = ledger
            .admit(
                &limits,
                want(0),
                at(NOW),
                t0 + Duration::from_millis(30_500),
            )
            .unwrap_err();
        let Refusal::Rate { retry_after, .. } = refused else {
            panic!("rate expected")
        };
        assert_eq!(
            retry_after, 30,
            "the first request leaves the window at 60 s"
        );
        // Refused requests take no slot; at 60 s the first one has left.
        assert!(ledger
            .admit(&limits, want(0), at(NOW), t0 + Duration::from_secs(60))
            .is_ok());
        assert!(ledger
            .admit(&limits, want(0), at(NOW), t0 + Duration::from_secs(61))
            .is_err());
    }

    #[test]
    fn periods_reset_at_midnight_and_on_the_first() {
        assert_eq!(
            next_reset(LimitPeriod::Day, at(NOW)),
            Some(at("2026-11-23 00:00:00"))
        );
        assert_eq!(
            next_reset(LimitPeriod::Month, at("2026-12-31 23:59:59")),
            Some(at("2027-01-01 00:00:00"))
        );
        assert_eq!(next_reset(LimitPeriod::Total, at(NOW)), None);
    }
}
