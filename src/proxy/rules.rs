//! The rules a request that reaches a model must pass before it is sent,
//! as pure logic over what the probe read: what it asks for that costs
//! more than tokens, whether a USD-budget user may have it priced, and
//! what it holds of the caller's limits while it runs.
//!
//! A reservation is the prompt (the body's size, plus what the objects it
//! names bring: a stored response's recorded prompt and reply, a file's
//! size, an allowance per image) and a full reply for each reply asked
//! for. What the named objects bring is known, so it must fit whole (the
//! reservation's floor): N requests building on one large response
//! against a budget that admits one run one at a time.

use super::owned::Named;
use super::probe::Probe;
use crate::catalogue::{Entry, Meter};
use crate::error::ApiError;
use crate::keytable::Caller;
use crate::limits::{self, Want};
use crate::state::Live;
use crate::usage::prices::Surcharges;
use crate::usage::watch::{Accounting, More};
use crate::usage::{Extras, Tier, Tokens};

/// What an image given as a part reserves: its size is not in the body
/// when it is a URL or a file (a high-detail image is about 1,100 tokens
/// at OpenAI, 1,600 at Anthropic).
pub const IMAGE_TOKENS: i64 = 2_000;
/// What a named object whose size the gateway never learnt reserves.
pub const UNKNOWN_OBJECT_TOKENS: i64 = 4_096;

/// What the request asks for that is charged beyond its tokens.
pub fn asked(entry: &Entry, probe: &Probe) -> Extras {
    let mut extras = Extras {
        tier: probe
            .service_tier
            .as_deref()
            .map_or(Tier::Standard, Tier::parse),
        ..Extras::default()
    };
    match entry.meter {
        Meter::Speech => extras.characters = probe.input_chars,
        Meter::Images => extras.images = probe.replies,
        _ => {}
    }
    extras
}

/// The surcharges a USD-budget user may only have priced.
fn surcharges(probe: &Probe, extras: &Extras) -> Surcharges {
    Surcharges {
        tier: extras.tier,
        web_search: probe.tools.web_search,
        file_search: probe.tools.file_search,
        code_interpreter: probe.tools.code_interpreter,
        cache_1h: probe.cache_1h,
    }
}

/// How the reply will be counted.
pub fn accounting(entry: &Entry, probe: &Probe, guess: Tokens) -> Accounting {
    let tools = probe.tools;
    let later = entry.meter == Meter::TokensLater && probe.store != Some(false);
    let more = More {
        asked: asked(entry, probe),
        guess: if later { guess } else { Tokens::default() },
        format: probe.response_format.as_deref().map(Box::from),
        clip: probe.audio,
    };
    Accounting {
        meter: Some(entry.meter),
        strip_usage: false,
        later,
        tools: tools.web_search || tools.file_search || tools.code_interpreter,
        dialect: match entry.face {
            crate::catalogue::Face::Gemini => crate::usage::extract::Dialect::Gemini,
            _ => crate::usage::extract::Dialect::Usage,
        },
        more: (more != More::default()).then(|| Box::new(more)),
    }
}

/// What the request will hold of its caller's limits, and its guessed
/// tokens; refused (403 `model_not_allowed`) when the caller spends from a
/// USD budget and the model, or a surcharge the request asks for, has no
/// price.
pub fn want(
    entry: &Entry,
    probe: &Probe,
    named: &Named,
    body_len: usize,
    model: &str,
    caller: &Caller,
    live: &Live,
) -> Result<(Want, Tokens), ApiError> {
    let default_reply = live.config.limits.reserve_completion_tokens;
    if !entry.meter.counted() {
        let want = Want {
            request: entry.uses_request,
            ..Want::default()
        };
        return Ok((want, Tokens::default()));
    }
    let known = named
        .prompt_tokens(UNKNOWN_OBJECT_TOKENS)
        .saturating_add(probe.images.saturating_mul(IMAGE_TOKENS));
    let prompt = limits::prompt_guess(body_len).saturating_add(known);
    let reply = probe.reply_tokens(default_reply);
    let guess = Tokens {
        prompt,
        completion: reply,
        ..Tokens::default()
    };
    let mut want = Want {
        request: entry.uses_request,
        tokens: prompt.saturating_add(reply),
        floor_tokens: known,
        ..Want::default()
    };
    if caller.has_budget() {
        let rate = live
            .prices
            .rate(model)
            .ok_or_else(|| ApiError::ModelUnpriced(model.to_owned()))?;
        let mut extras = asked(entry, probe);
        if let Some(what) = rate.unpriced(&surcharges(probe, &extras)) {
            return Err(ApiError::SurchargeUnpriced {
                model: model.to_owned(),
                what,
            });
        }
        extras.web_searches = i64::from(probe.tools.web_search);
        extras.audio_in_ms = probe.audio.map_or(0, |a| a.ms());
        // At most what the prompt guess and full replies cost; at least
        // what the named objects bring, at the input rate.
        want.nano_usd = rate.cost(guess, &extras);
        let floor = Tokens {
            prompt: known,
            ..Tokens::default()
        };
        want.floor_nano_usd = rate.cost(floor, &Extras::default());
    }
    Ok((want, guess))
}
