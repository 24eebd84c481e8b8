//! The caller's own limits on a metered reply, so that agents can pace
//! themselves: OpenAI's `x-ratelimit-*` names (on `/v1/messages`
//! Anthropic's `anthropic-ratelimit-*`), for the limits the caller has and
//! none else, never the shared upstream account's (those are dropped).

use crate::catalogue::Face;
use crate::limits::Left;
use actix_web::http::header::{HeaderName, HeaderValue};

pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// The headers telling what is `left`, in `face`'s names; `now`: the
/// time, for Anthropic's reset timestamps.
pub fn headers(left: Left, face: Face, now: chrono::NaiveDateTime) -> Headers {
    let mut out = Headers::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.push((HeaderName::from_static(name), v));
        }
    };
    match face {
        // Google sends none of its own.
        Face::Gemini => {}
        Face::OpenAi => {
            if let Some((limit, remaining, reset)) = left.requests {
                put("x-ratelimit-limit-requests", limit.to_string());
                put("x-ratelimit-remaining-requests", remaining.to_string());
                if let Some(s) = reset {
                    put("x-ratelimit-reset-requests", format!("{s}s"));
                }
            }
            if let Some((limit, remaining)) = left.tokens {
                put("x-ratelimit-limit-tokens", limit.to_string());
                put("x-ratelimit-remaining-tokens", remaining.to_string());
            }
        }
        Face::Anthropic => {
            if let Some((limit, remaining, reset)) = left.requests {
                put("anthropic-ratelimit-requests-limit", limit.to_string());
                put(
                    "anthropic-ratelimit-requests-remaining",
                    remaining.to_string(),
                );
                if let Some(s) = reset {
                    let at = now + chrono::Duration::seconds(i64::try_from(s).unwrap_or(0));
                    put("anthropic-ratelimit-requests-reset", crate::db::rfc3339(at));
                }
            }
            if let Some((limit, remaining)) = left.tokens {
                put("anthropic-ratelimit-tokens-limit", limit.to_string());
                put(
                    "anthropic-ratelimit-tokens-remaining",
                    remaining.to_string(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_limits_the_caller_has_in_each_apis_names() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let left = Left {
            requests: Some((6, 4, Some(42))),
            tokens: None,
        };
        let names = |face| {
            headers(left, face, now)
                .into_iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Face::OpenAi),
            [
                "x-ratelimit-limit-requests: 6",
                "x-ratelimit-remaining-requests: 4",
                "x-ratelimit-reset-requests: 42s"
            ]
        );
        assert_eq!(
            names(Face::Anthropic)[2],
            "anthropic-ratelimit-requests-reset: 2027-01-15T08:00:42Z"
        );
        assert!(headers(Left::default(), Face::OpenAi, now).is_empty());
    }
}
