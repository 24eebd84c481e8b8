//! What a user is given: a name, and the settings `user add`, `user edit`,
//! the admin API and the web console set. The CLI parses its flags into
//! `UserSettings` with the parsers here; the admin API deserializes its JSON
//! body into the same type with the same rules.

use crate::limits::LimitPeriod;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A user name: 1–64 printable characters, no whitespace; kept literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<UserName, String> {
        let n = s.chars().count();
        if n == 0 || n > 64 {
            return Err(format!("a user name must be 1 to 64 characters, not {n}"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a user name must not contain whitespace or control characters".into());
        }
        Ok(UserName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One optional setting: a value, or cleared (`none`/`never` on the
/// command line, `null` in JSON).
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    Clear,
    Set(T),
}

impl<T> Setting<T> {
    pub fn into_option(self) -> Option<T> {
        match self {
            Setting::Clear => None,
            Setting::Set(v) => Some(v),
        }
    }

    fn from_option(v: Option<T>) -> Setting<T> {
        v.map_or(Setting::Clear, Setting::Set)
    }
}

const CLEAR_WORDS: [&str; 2] = ["none", "never"];

fn count(n: i64) -> Result<i64, String> {
    if n >= 0 {
        Ok(n)
    } else {
        Err(format!("`{n}` is not a whole number ≥ 0"))
    }
}

pub fn parse_count(s: &str) -> Result<Setting<i64>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    s.parse::<i64>()
        .ok()
        .and_then(|n| count(n).ok())
        .map(Setting::Set)
        .ok_or_else(|| format!("`{s}` is not a whole number ≥ 0 (or `none`)"))
}

/// Nano-dollars in a dollar, as budgets are kept.
const NANO: i64 = 1_000_000_000;

/// USD as typed (`5`, `12.50`, `0.000001`), exactly, in nano-dollars:
/// no float on the way. At most 9 decimals; not negative.
pub fn usd_to_nano(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not an amount of USD ≥ 0 (like 25 or 12.50)");
    let t = s.trim().trim_start_matches('$');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) || frac.len() > 9 {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(NANO)
        .and_then(|n| n.checked_add(frac))
        .ok_or_else(bad)
}

/// A budget in USD (`--budget-usd`); `none` clears.
pub fn parse_usd(s: &str) -> Result<Setting<i64>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    usd_to_nano(s).map(Setting::Set)
}

/// A JSON amount of USD (a number) in nano-dollars.
pub fn json_usd_amount(v: f64) -> Result<i64, String> {
    if !(v.is_finite() && v >= 0.0 && v * 1e9 < i64::MAX as f64) {
        return Err(format!("`{v}` is not an amount of USD ≥ 0"));
    }
    // Through its shortest decimal text, so 0.1 is 100,000,000 exactly.
    usd_to_nano(&format!("{v}")).or_else(|_| Ok((v * 1e9).round() as i64))
}

/// `YYYY-MM-DD` (the end of that day, UTC), RFC 3339, or a duration from now
/// (`30d`, `12h`, `90m`); `never` clears.
pub fn parse_expiry(s: &str) -> Result<Setting<NaiveDateTime>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    parse_time_or_duration(s, Utc::now().naive_utc()).map(Setting::Set)
}

fn parse_time_or_duration(s: &str, now: NaiveDateTime) -> Result<NaiveDateTime, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(23, 59, 59).expect("valid time"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).naive_utc());
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let d = chrono::Duration::from_std(d).map_err(|_| format!("`{s}` is too long"))?;
        return now
            .checked_add_signed(d)
            .ok_or_else(|| format!("`{s}` is too long"));
    }
    Err(format!(
        "`{s}` is not a date (YYYY-MM-DD), an RFC 3339 time, a duration (30d, 12h, 90m) or `never`"
    ))
}

/// `--models gpt-4o,o1-*`: comma-separated glob patterns; `none` clears.
pub fn parse_models(s: &str) -> Result<Setting<Vec<String>>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    models(s.split(',').map(str::to_owned).collect()).map(Setting::Set)
}

/// A list of model patterns, trimmed, each a valid glob, at least one.
fn models(list: Vec<String>) -> Result<Vec<String>, String> {
    let list: Vec<String> = list
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err("give at least one model pattern, or `none`".into());
    }
    for m in &list {
        crate::model_pattern::ModelPattern::new(m)
            .map_err(|e| format!("`{m}` is not a glob pattern: {e}"))?;
    }
    Ok(list)
}

/// A note; empty clears it.
pub fn parse_note(s: &str) -> Result<Setting<String>, String> {
    Ok(note(Some(s.to_owned())))
}

fn note(text: Option<String>) -> Setting<String> {
    Setting::from_option(text.filter(|t| !t.is_empty()))
}

/// The settings `user add`, `user edit` and the admin API share; `None`
/// leaves one as it is. As JSON: an absent field leaves it, `null`
/// clears it; unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    #[serde(default, deserialize_with = "json_count")]
    pub token_limit: Option<Setting<i64>>,
    #[serde(default, deserialize_with = "json_count")]
    pub request_limit: Option<Setting<i64>>,
    /// USD per period, in nano-dollars (`budget_usd` in JSON).
    #[serde(default, rename = "budget_usd", deserialize_with = "json_usd")]
    pub budget: Option<Setting<i64>>,
    #[serde(default)]
    pub limit_period: Option<LimitPeriod>,
    #[serde(default, deserialize_with = "json_expiry")]
    pub expires: Option<Setting<NaiveDateTime>>,
    #[serde(default, deserialize_with = "json_models")]
    pub models: Option<Setting<Vec<String>>>,
    #[serde(default, deserialize_with = "json_count")]
    pub rpm: Option<Setting<i64>>,
    #[serde(default, deserialize_with = "json_count")]
    pub max_parallel: Option<Setting<i64>>,
    #[serde(default, deserialize_with = "json_note")]
    pub note: Option<Setting<String>>,
    /// Blocks (or unblocks) the user's key.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// The user's team, by name (`none`/`null`: no team).
    #[serde(default, deserialize_with = "json_team")]
    pub team: Option<Setting<String>>,
}

impl UserSettings {
    /// These settings less the blocking or unblocking.
    pub fn without_disabled(self) -> UserSettings {
        UserSettings {
            disabled: None,
            ..self
        }
    }

    pub fn is_empty(&self) -> bool {
        self.token_limit.is_none()
            && self.request_limit.is_none()
            && self.budget.is_none()
            && self.limit_period.is_none()
            && self.expires.is_none()
            && self.models.is_none()
            && self.rpm.is_none()
            && self.max_parallel.is_none()
            && self.note.is_none()
            && self.disabled.is_none()
            && self.team.is_none()
    }

    /// Reads a JSON body; an error names the field it is about.
    pub fn from_json(body: serde_json::Value) -> Result<UserSettings, String> {
        serde_path_to_error::deserialize(body).map_err(|e| {
            let field = e.path().to_string();
            match field.as_str() {
                "." => e.inner().to_string(),
                _ => format!("`{field}`: {}", e.inner()),
            }
        })
    }
}

/// A JSON setting present in the body: `null` clears, a value is checked.
fn json_setting<'de, D, T, U>(
    d: D,
    check: impl FnOnce(T) -> Result<U, String>,
) -> Result<Option<Setting<U>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(d)? {
        None => Ok(Some(Setting::Clear)),
        Some(v) => check(v)
            .map(|v| Some(Setting::Set(v)))
            .map_err(D::Error::custom),
    }
}

fn json_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Setting<i64>>, D::Error> {
    json_setting(d, count)
}

fn json_usd<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Setting<i64>>, D::Error> {
    json_setting(d, json_usd_amount)
}

/// As `--expires` takes it (`"never"` clears, as `null` does).
fn json_expiry<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Setting<NaiveDateTime>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(Some(Setting::Clear)),
        Some(s) => parse_expiry(&s).map(Some).map_err(D::Error::custom),
    }
}

fn json_models<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Setting<Vec<String>>>, D::Error> {
    json_setting(d, models)
}

/// `--team TEAM|none`.
pub fn parse_team(s: &str) -> Result<Setting<String>, String> {
    if s == "none" {
        return Ok(Setting::Clear);
    }
    UserName::parse(s)
        .map(|n| Setting::Set(n.0))
        .map_err(|e| e.replace("user name", "team name"))
}

fn json_team<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Setting<String>>, D::Error> {
    json_setting(d, |s: String| {
        UserName::parse(&s)
            .map(|n| n.0)
            .map_err(|e| e.replace("user name", "team name"))
    })
}

fn json_note<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Setting<String>>, D::Error> {
    Ok(Some(note(Option::<String>::deserialize(d)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn names_are_kept_literally() {
        for ok in ["alice", "o'brien", "zoë-日本", "quote\"d", &"x".repeat(64)] {
            assert_eq!(UserName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a b", "tab\there", &"x".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_date_is_end_of_day_and_durations_count_from_now() {
        let now = at("2026-11-22 10:00:00");
        assert_eq!(
            parse_time_or_duration("2026-11-30", now).unwrap(),
            at("2026-11-30 23:59:59")
        );
        assert_eq!(
            parse_time_or_duration("2026-11-30T12:00:00+02:00", now).unwrap(),
            at("2026-11-30 10:00:00")
        );
        assert_eq!(
            parse_time_or_duration("30d", now).unwrap(),
            at("2026-12-22 10:00:00")
        );
        assert_eq!(
            parse_time_or_duration("90m", now).unwrap(),
            at("2026-11-22 11:30:00")
        );
        assert!(parse_time_or_duration("soon", now).is_err());
        assert_eq!(parse_expiry("never").unwrap(), Setting::Clear);
    }

    #[test]
    fn settings_parse_and_clear() {
        assert_eq!(parse_count("100").unwrap(), Setting::Set(100));
        assert_eq!(parse_count("none").unwrap(), Setting::Clear);
        assert!(parse_count("-1").is_err());
        assert_eq!(
            parse_models("gpt-4o, o1-*").unwrap(),
            Setting::Set(vec!["gpt-4o".into(), "o1-*".into()])
        );
        assert!(parse_models(",").is_err());
        assert!(parse_models("[").is_err());
        assert_eq!(parse_usd("25").unwrap(), Setting::Set(25 * NANO));
        assert_eq!(parse_usd("$0.10").unwrap(), Setting::Set(NANO / 10));
        assert_eq!(parse_usd(".000000001").unwrap(), Setting::Set(1));
        assert_eq!(parse_usd("none").unwrap(), Setting::Clear);
        for bad in ["-1", "1.0000000001", "ten", "", ".", "1e3", "99999999999"] {
            assert!(parse_usd(bad).is_err(), "{bad}");
        }
        assert_eq!(json_usd_amount(0.1), Ok(NANO / 10));
        assert_eq!(json_usd_amount(12.5), Ok(12 * NANO + NANO / 2));
        assert!(json_usd_amount(-1.0).is_err() && json_usd_amount(f64::NAN).is_err());
    }

    #[test]
    fn json_reads_as_the_flags_do() {
        let s = UserSettings::from_json(json!({
            "token_limit": 5, "request_limit": null, "limit_period": "day",
            "models": [" gpt-4o ", "o1-*"], "note": "", "disabled": true
        }))
        .unwrap();
        assert_eq!(s.token_limit, Some(Setting::Set(5)));
        assert_eq!(s.request_limit, Some(Setting::Clear));
        assert_eq!(s.limit_period, Some(LimitPeriod::Day));
        assert_eq!(
            s.models,
            Some(Setting::Set(vec!["gpt-4o".into(), "o1-*".into()]))
        );
        assert_eq!(s.note, Some(Setting::Clear));
        assert_eq!(s.disabled, Some(true));
        assert!(s.rpm.is_none() && s.expires.is_none());
        assert!(UserSettings::from_json(json!({})).unwrap().is_empty());
        for never in [json!("never"), json!(null)] {
            let s = UserSettings::from_json(json!({ "expires": never })).unwrap();
            assert_eq!(s.expires, Some(Setting::Clear));
        }
        for (body, needle) in [
            (json!({"token_limit": -5}), "`token_limit`"),
            (json!({"limit_period": "week"}), "`limit_period`"),
            (json!({"expires": "soon"}), "`expires`"),
            (json!({"expires": "nevermore"}), "`expires`"),
            (json!({"models": ["["]}), "`models`"),
            (json!({"budget_usd": -2}), "`budget_usd`"),
            (json!({"colour": "blue"}), "colour"),
        ] {
            let e = UserSettings::from_json(body.clone()).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
        }
    }
}
