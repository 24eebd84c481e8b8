//! Prices: what a model's tokens cost, from the operator's `prices` and
//! LiteLLM's `model_prices_and_context_window.json` (`prices_file`), and
//! the cost of one request's tokens in an exact unit.
//!
//! Money is never a float sum: a rate is held in pico-dollars per token
//! (1 USD per 1M tokens = 1,000,000 pico-dollars a token), a cost in
//! nano-dollars (what records and daily totals store), converted to USD
//! only at the edges.

use super::{Extras, SearchSize, Tier, Tokens};
use crate::config::{Config, Price, TierPrice};
use crate::model_pattern::{is_pattern, ModelPattern};
use anyhow::Context;
use arc_swap::ArcSwap;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Nano-dollars as USD, for showing them (never to sum).
pub fn usd(nano_usd: i64) -> f64 {
    nano_usd as f64 / 1e9
}

/// What tokens cost at one tier or band, in pico-dollars a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenRates {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
    pub cache_write: i64,
}

/// What one model's use costs: its tokens (in pico-dollars a token, at
/// each tier and above the long-context threshold) and what the provider
/// bills by other units (pico-dollars a character, a second of audio, an
/// image, a tool call, a container session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    pub tokens: TokenRates,
    /// Cache writes with a one-hour time to live.
    pub cache_write_1h: Option<i64>,
    pub priority: Option<TokenRates>,
    pub flex: Option<TokenRates>,
    pub batch: Option<TokenRates>,
    /// Rates for every token of a request whose prompt is above the
    /// threshold (200k tokens).
    pub long: Option<TokenRates>,
    pub per_character: Option<i64>,
    pub per_second_in: Option<i64>,
    pub per_second_out: Option<i64>,
    pub per_image: Option<i64>,
    /// By search context size: low, medium, high.
    pub web_search: Option<[i64; 3]>,
    pub file_search: Option<i64>,
    pub code_session: Option<i64>,
}

/// Above this many prompt tokens a request is priced at `long` rates.
pub const LONG_CONTEXT: i64 = 200_000;

fn pico(usd: f64) -> i64 {
    // Saturates (`as` on a float), and a price is never negative.
    (usd * 1e12).round().max(0.0) as i64
}

impl TokenRates {
    /// From USD per 1M tokens, cached input and cache writes at the input
    /// rate unless given.
    fn per_million(input: f64, output: f64, cached: Option<f64>, write: Option<f64>) -> TokenRates {
        let per_token = |usd: f64| pico(usd / 1e6);
        TokenRates {
            input: per_token(input),
            output: per_token(output),
            cached_input: per_token(cached.unwrap_or(input)),
            cache_write: per_token(write.unwrap_or(input)),
        }
    }

    fn tier(t: &TierPrice) -> TokenRates {
        TokenRates::per_million(t.input, t.output, t.cached_input, t.cache_write)
    }
}

/// What a request asks for that costs more than its tokens: a USD-budget
/// user is refused what the model's rate leaves unpriced.
#[derive(Debug, Clone, Copy, Default)]
pub struct Surcharges {
    pub tier: Tier,
    pub web_search: bool,
    pub file_search: bool,
    pub code_interpreter: bool,
    pub cache_1h: bool,
}

impl Rate {
    /// From the operator's `prices` entry.
    fn from_price(p: &Price) -> Rate {
        let opt = |v: Option<f64>, per: f64| v.map(|usd| pico(usd / per));
        Rate {
            tokens: TokenRates::per_million(p.input, p.output, p.cached_input, p.cache_write),
            cache_write_1h: opt(p.cache_write_1h, 1e6),
            priority: p.priority.as_ref().map(TokenRates::tier),
            flex: p.flex.as_ref().map(TokenRates::tier),
            batch: p.batch.as_ref().map(TokenRates::tier),
            long: p.above_200k.as_ref().map(TokenRates::tier),
            per_character: opt(p.per_million_characters, 1e6),
            per_second_in: opt(p.per_minute_audio_in, 60.0),
            per_second_out: opt(p.per_minute_audio_out, 60.0),
            per_image: opt(p.per_image, 1.0),
            web_search: p.per_thousand_web_searches.map(|usd| [pico(usd / 1e3); 3]),
            file_search: opt(p.per_thousand_file_searches, 1e3),
            code_session: opt(p.per_code_session, 1.0),
        }
    }

    /// The token rates of a request served at `tier` with `prompt` tokens.
    fn token_rates(&self, tier: Tier, prompt: i64) -> TokenRates {
        if prompt > LONG_CONTEXT {
            if let Some(long) = self.long {
                return long;
            }
        }
        let at_tier = match tier {
            Tier::Standard => None,
            Tier::Priority => self.priority,
            Tier::Flex => self.flex,
            Tier::Batch => self.batch,
        };
        at_tier.unwrap_or(self.tokens)
    }

    /// What `t` and `extras` cost, in nano-dollars: cached prompt tokens at
    /// the cached rate, cache writes at theirs (one-hour ones apart), the
    /// rest of the prompt at the input rate, the reply at the output rate,
    /// all at the tier's rates (or the long-context ones); then the other
    /// units at their prices.
    pub fn cost(&self, t: Tokens, extras: &Extras) -> i64 {
        let r = self.token_rates(extras.tier, t.prompt);
        let prompt = t.prompt.max(0);
        let cached = t.cached.clamp(0, prompt);
        let written = t.cache_written.clamp(0, prompt - cached);
        let written_1h = extras.cache_written_1h.clamp(0, written);
        let plain = prompt - cached - written;
        let hour = self.cache_write_1h.unwrap_or(r.input.saturating_mul(2));
        let n = |v: i64| i128::from(v.max(0));
        let rate = |v: Option<i64>| i128::from(v.unwrap_or(0));
        let search = self
            .web_search
            .map(|by_size| {
                by_size[match extras.search_size {
                    SearchSize::Low => 0,
                    SearchSize::Medium => 1,
                    SearchSize::High => 2,
                }]
            })
            .unwrap_or(0);
        let pico = n(plain) * i128::from(r.input)
            + n(cached) * i128::from(r.cached_input)
            + n(written - written_1h) * i128::from(r.cache_write)
            + n(written_1h) * i128::from(hour)
            + n(t.completion) * i128::from(r.output)
            + n(extras.characters) * rate(self.per_character)
            + n(extras.audio_in_ms) * rate(self.per_second_in) / 1000
            + n(extras.audio_out_ms) * rate(self.per_second_out) / 1000
            + n(extras.images) * rate(self.per_image)
            + n(extras.web_searches) * i128::from(search)
            + n(extras.file_searches) * rate(self.file_search)
            + n(extras.code_sessions) * rate(self.code_session);
        // Rounded to the nearest nano-dollar.
        i64::try_from((pico + 500) / 1000).unwrap_or(i64::MAX)
    }

    /// The first surcharge `asked` that this rate leaves unpriced, named
    /// for the refusal.
    pub fn unpriced(&self, asked: &Surcharges) -> Option<&'static str> {
        let tier = match asked.tier {
            Tier::Priority if self.priority.is_none() => Some("the `priority` service tier"),
            _ => None,
        };
        tier.or_else(|| {
            [
                (
                    asked.web_search && self.web_search.is_none(),
                    "web search calls",
                ),
                (
                    asked.file_search && self.file_search.is_none(),
                    "file search calls",
                ),
                (
                    asked.code_interpreter && self.code_session.is_none(),
                    "code interpreter sessions",
                ),
            ]
            .into_iter()
            .find(|(missing, _)| *missing)
            .map(|(_, what)| what)
        })
    }
}

/// The price table: exact names first, then the longest matching glob.
#[derive(Debug, Default)]
pub struct Prices {
    exact: HashMap<String, Rate>,
    /// Longest pattern first.
    globs: Vec<(ModelPattern, Rate)>,
}

/// One entry of LiteLLM's table (USD per token, per character, per second,
/// per image, per call); its other fields are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LiteLlmEntry {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
    cache_creation_input_token_cost_above_1hr: Option<f64>,
    input_cost_per_token_priority: Option<f64>,
    output_cost_per_token_priority: Option<f64>,
    cache_read_input_token_cost_priority: Option<f64>,
    input_cost_per_token_flex: Option<f64>,
    output_cost_per_token_flex: Option<f64>,
    cache_read_input_token_cost_flex: Option<f64>,
    input_cost_per_token_batches: Option<f64>,
    output_cost_per_token_batches: Option<f64>,
    input_cost_per_token_above_200k_tokens: Option<f64>,
    output_cost_per_token_above_200k_tokens: Option<f64>,
    cache_read_input_token_cost_above_200k_tokens: Option<f64>,
    cache_creation_input_token_cost_above_200k_tokens: Option<f64>,
    input_cost_per_character: Option<f64>,
    input_cost_per_second: Option<f64>,
    output_cost_per_second: Option<f64>,
    output_cost_per_image: Option<f64>,
    input_cost_per_image: Option<f64>,
    search_context_cost_per_query: Option<SearchCost>,
    file_search_cost_per_1k_calls: Option<f64>,
    code_interpreter_cost_per_session: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchCost {
    search_context_size_low: Option<f64>,
    search_context_size_medium: Option<f64>,
    search_context_size_high: Option<f64>,
}

impl LiteLlmEntry {
    /// The entry's rate, if it prices anything the gateway measures.
    fn rate(&self) -> Option<Rate> {
        let input = self.input_cost_per_token;
        let output = self.output_cost_per_token;
        let per_token = |v: Option<f64>| v.map(pico);
        let by_tier = |i: Option<f64>, o: Option<f64>, cached: Option<f64>, write: Option<f64>| {
            (i.is_some() || o.is_some()).then(|| {
                let i = i.or(input).unwrap_or(0.0);
                TokenRates {
                    input: pico(i),
                    output: pico(o.or(output).unwrap_or(0.0)),
                    cached_input: pico(cached.unwrap_or(i)),
                    cache_write: pico(write.or(self.cache_creation_input_token_cost).unwrap_or(i)),
                }
            })
        };
        let tokens = TokenRates {
            input: pico(input.unwrap_or(0.0)),
            output: pico(output.unwrap_or(0.0)),
            cached_input: pico(self.cache_read_input_token_cost.or(input).unwrap_or(0.0)),
            cache_write: pico(
                self.cache_creation_input_token_cost
                    .or(input)
                    .unwrap_or(0.0),
            ),
        };
        let search = self.search_context_cost_per_query.as_ref().and_then(|s| {
            let medium = s.search_context_size_medium?;
            Some([
                pico(s.search_context_size_low.unwrap_or(medium)),
                pico(medium),
                pico(s.search_context_size_high.unwrap_or(medium)),
            ])
        });
        let rate = Rate {
            tokens,
            cache_write_1h: per_token(self.cache_creation_input_token_cost_above_1hr),
            priority: by_tier(
                self.input_cost_per_token_priority,
                self.output_cost_per_token_priority,
                self.cache_read_input_token_cost_priority,
                None,
            ),
            flex: by_tier(
                self.input_cost_per_token_flex,
                self.output_cost_per_token_flex,
                self.cache_read_input_token_cost_flex,
                None,
            ),
            batch: by_tier(
                self.input_cost_per_token_batches,
                self.output_cost_per_token_batches,
                None,
                None,
            ),
            long: by_tier(
                self.input_cost_per_token_above_200k_tokens,
                self.output_cost_per_token_above_200k_tokens,
                self.cache_read_input_token_cost_above_200k_tokens,
                self.cache_creation_input_token_cost_above_200k_tokens,
            ),
            per_character: per_token(self.input_cost_per_character),
            per_second_in: per_token(self.input_cost_per_second),
            per_second_out: per_token(self.output_cost_per_second),
            per_image: per_token(self.output_cost_per_image.or(self.input_cost_per_image)),
            web_search: search,
            file_search: self
                .file_search_cost_per_1k_calls
                .map(|usd| pico(usd / 1e3)),
            code_session: per_token(self.code_interpreter_cost_per_session),
        };
        let priced = input.is_some()
            || output.is_some()
            || rate.per_character.is_some()
            || rate.per_second_in.is_some()
            || rate.per_second_out.is_some()
            || rate.per_image.is_some();
        priced.then_some(rate)
    }
}

impl Prices {
    /// The table of `config`: `prices_file` read, `prices` over it.
    pub fn load(config: &Config) -> anyhow::Result<Prices> {
        let mut rates = BTreeMap::new();
        if let Some(path) = &config.prices_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("prices_file: cannot read {}", path.display()))?;
            rates = from_litellm(&text).with_context(|| {
                format!(
                    "prices_file: {} is not LiteLLM's price table",
                    path.display()
                )
            })?;
        }
        for (name, price) in &config.prices {
            rates.insert(name.clone(), Rate::from_price(price));
        }
        Prices::from_rates(rates)
    }

    fn from_rates(rates: BTreeMap<String, Rate>) -> anyhow::Result<Prices> {
        let mut prices = Prices::default();
        for (name, rate) in rates {
            if is_pattern(&name) {
                let pattern = ModelPattern::new(&name)
                    .with_context(|| format!("prices: `{name}` is not a glob pattern"))?;
                prices.globs.push((pattern, rate));
            } else {
                prices.exact.insert(name, rate);
            }
        }
        prices
            .globs
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.as_str().len()));
        Ok(prices)
    }

    /// The rate of `model`: its exact entry, else the longest glob that
    /// matches it.
    pub fn rate(&self, model: &str) -> Option<&Rate> {
        self.exact.get(model).or_else(|| {
            self.globs
                .iter()
                .find(|(p, _)| p.matches(model))
                .map(|(_, r)| r)
        })
    }

    /// How many entries (names and patterns) the table has.
    pub fn len(&self) -> usize {
        self.exact.len() + self.globs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some entry could price a model that `pattern` (an
    /// upstream's `models` entry) names.
    pub fn covers(&self, pattern: &str) -> bool {
        if !is_pattern(pattern) {
            return self.rate(pattern).is_some();
        }
        // A pattern serves many names: it is covered if an entry's name
        // matches it, or an entry's pattern matches the pattern itself.
        let Ok(served) = ModelPattern::new(pattern) else {
            return false;
        };
        self.exact.keys().any(|m| served.matches(m))
            || self
                .globs
                .iter()
                .any(|(p, _)| p.matches(pattern) || served.matches(p.as_str()))
    }
}

/// LiteLLM's `model_prices_and_context_window.json`: an object of model
/// name → entry; entries that price nothing the gateway measures, and
/// `sample_spec`, are left out.
fn from_litellm(text: &str) -> anyhow::Result<BTreeMap<String, Rate>> {
    let table: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)?;
    let mut rates = BTreeMap::new();
    for (name, value) in table {
        if name == "sample_spec" {
            continue;
        }
        let Some(rate) = LiteLlmEntry::deserialize(&value)
            .ok()
            .and_then(|e| e.rate())
        else {
            continue;
        };
        rates.insert(name, rate);
    }
    Ok(rates)
}

/// The table in force, swapped whole on a reload; the usage writer prices
/// each record with what is in force when it writes it.
pub type PriceBook = Arc<ArcSwap<Prices>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn price(input: f64, output: f64) -> Price {
        Price {
            input,
            output,
            ..Price::default()
        }
    }

    fn tokens(prompt: i64, completion: i64, cached: i64, cache_written: i64) -> Tokens {
        Tokens {
            prompt,
            completion,
            cached,
            cache_written,
        }
    }

    const NONE: Extras = Extras {
        tier: Tier::Standard,
        cache_written_1h: 0,
        characters: 0,
        audio_in_ms: 0,
        audio_out_ms: 0,
        images: 0,
        web_searches: 0,
        search_size: SearchSize::Medium,
        file_searches: 0,
        code_sessions: 0,
    };

    #[test]
    fn the_exact_name_first_then_the_longest_glob() {
        let config = Config {
            prices: BTreeMap::from([
                ("gpt-4o".into(), price(2.5, 10.0)),
                ("gpt-4o*".into(), price(1.0, 1.0)),
                ("gpt-4o-mini*".into(), price(0.15, 0.6)),
                ("*".into(), price(100.0, 100.0)),
            ]),
            ..Config::default()
        };
        let prices = Prices::load(&config).unwrap();
        let input = |m: &str| prices.rate(m).unwrap().tokens.input;
        assert_eq!(input("gpt-4o"), 2_500_000);
        assert_eq!(input("gpt-4o-mini-2024-07-18"), 150_000);
        assert_eq!(input("gpt-4o-2024-08-06"), 1_000_000);
        assert_eq!(input("o1"), 100_000_000);
        assert_eq!(prices.len(), 4);
        assert!(prices.covers("gpt-4o") && prices.covers("claude-*"));
    }

    #[test]
    fn costs_are_exact_and_price_the_cache() {
        let rate = Rate::from_price(&Price {
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            ..price(3.0, 15.0)
        });
        // 1M plain prompt tokens at $3, 1M reply tokens at $15.
        assert_eq!(
            rate.cost(tokens(1_000_000, 1_000_000, 0, 0), &NONE),
            18_000_000_000
        );
        // 130 prompt tokens: 100 read from the cache, 20 written, 10 plain.
        let nano = 10 * 3000 + 100 * 300 + 20 * 3750 + 7 * 15000;
        assert_eq!(rate.cost(tokens(130, 7, 100, 20), &NONE), nano);
        // Cached input defaults to the input price.
        let plain = Rate::from_price(&price(0.15, 0.6));
        assert_eq!(
            plain.cost(tokens(10, 0, 10, 0), &NONE),
            plain.cost(tokens(10, 0, 0, 0), &NONE)
        );
        // A tenth of a nano-dollar a token adds up exactly: 0.02 USD / 1M.
        let cheap = Rate::from_price(&price(0.02, 0.0));
        assert_eq!(cheap.cost(tokens(1_000_000, 0, 0, 0), &NONE), 20_000_000);
        // Nonsense counts cost nothing rather than wrapping.
        assert_eq!(rate.cost(tokens(-5, -1, 9, 9), &NONE), 0);
        assert_eq!(rate.cost(tokens(i64::MAX, i64::MAX, 0, 0), &NONE), i64::MAX);
    }

    /// Tiers, long prompts, one-hour cache writes and the units that are
    /// not tokens, each at its own price.
    #[test]
    fn surcharges_are_priced_at_their_own_rates() {
        let tier = |input, output| TierPrice {
            input,
            output,
            cached_input: None,
            cache_write: None,
        };
        let rate = Rate::from_price(&Price {
            priority: Some(tier(5.0, 40.0)),
            flex: Some(tier(1.25, 10.0)),
            above_200k: Some(tier(6.0, 22.5)),
            cache_write_1h: Some(6.0),
            per_million_characters: Some(15.0),
            per_minute_audio_in: Some(0.006),
            per_image: Some(0.04),
            per_thousand_web_searches: Some(10.0),
            per_code_session: Some(0.03),
            ..price(2.5, 20.0)
        });
        let t = tokens(100_000, 100_000, 0, 0);
        let at = |tier| Extras { tier, ..NONE };
        // 100k in, 100k out: $2.25 standard, $4.50 priority, $1.125 flex.
        assert_eq!(rate.cost(t, &NONE), 2_250_000_000);
        assert_eq!(rate.cost(t, &at(Tier::Priority)), 4_500_000_000);
        assert_eq!(rate.cost(t, &at(Tier::Flex)), 1_125_000_000);
        // A tier without its own rates is priced at the standard ones.
        assert_eq!(rate.cost(t, &at(Tier::Batch)), 2_250_000_000);
        // Above 200k prompt tokens every token is at the long rates.
        assert_eq!(rate.cost(tokens(200_000, 0, 0, 0), &NONE), 500_000_000);
        assert_eq!(rate.cost(tokens(200_001, 0, 0, 0), &NONE), 1_200_006_000);
        // 1,000 written to the cache for an hour, 1,000 for five minutes.
        let hour = Extras {
            cache_written_1h: 1000,
            ..NONE
        };
        assert_eq!(
            rate.cost(tokens(2000, 0, 0, 2000), &hour),
            1000 * 6000 + 1000 * 2500
        );
        let units = Extras {
            characters: 1_000_000,
            audio_in_ms: 60_000,
            images: 2,
            web_searches: 3,
            code_sessions: 1,
            ..NONE
        };
        assert_eq!(
            rate.cost(tokens(0, 0, 0, 0), &units),
            15_000_000_000 + 6_000_000 + 80_000_000 + 30_000_000 + 30_000_000
        );
        let asked = |tier, web_search| Surcharges {
            tier,
            web_search,
            ..Surcharges::default()
        };
        assert_eq!(rate.unpriced(&asked(Tier::Priority, true)), None);
        let base = Rate::from_price(&price(2.5, 20.0));
        assert_eq!(
            base.unpriced(&asked(Tier::Priority, false)),
            Some("the `priority` service tier")
        );
        assert_eq!(base.unpriced(&asked(Tier::Flex, false)), None, "a discount");
        assert_eq!(
            base.unpriced(&asked(Tier::Standard, true)),
            Some("web search calls")
        );
    }

    #[test]
    fn litellms_table_as_published_with_prices_over_it() {
        let sample = include_str!("../../tests/data/model_prices_sample.json");
        let path =
            std::env::temp_dir().join(format!("chatgate-prices-{}.json", std::process::id()));
        std::fs::write(&path, sample).unwrap();
        let config = Config {
            prices_file: Some(path.clone()),
            prices: BTreeMap::from([("gpt-4o".into(), price(1.0, 2.0))]),
            ..Config::default()
        };
        let prices = Prices::load(&config).unwrap();
        std::fs::remove_file(&path).unwrap();
        // The operator's entry wins over the file's.
        assert_eq!(prices.rate("gpt-4o").unwrap().tokens.input, 1_000_000);
        let claude = prices.rate("claude-sonnet-4-5").unwrap();
        assert_eq!(
            claude.tokens,
            TokenRates {
                input: 3_000_000,
                output: 15_000_000,
                cached_input: 300_000,
                cache_write: 3_750_000
            }
        );
        assert_eq!(claude.cache_write_1h, Some(6_000_000));
        assert_eq!(claude.long.unwrap().output, 22_500_000);
        assert_eq!(claude.web_search, Some([10_000_000_000; 3]));
        let gpt5 = prices.rate("gpt-5").unwrap();
        assert_eq!(
            (gpt5.priority.unwrap().input, gpt5.flex.unwrap().output),
            (2_500_000, 5_000_000)
        );
        let mini = prices.rate("gpt-4o-mini").unwrap();
        assert_eq!(
            (mini.tokens.input, mini.tokens.cached_input),
            (150_000, 75_000)
        );
        // Priced by the character, the second and the image.
        assert_eq!(
            prices.rate("tts-1").unwrap().per_character,
            Some(15_000_000)
        );
        assert_eq!(
            prices.rate("whisper-1").unwrap().per_second_in,
            Some(100_000_000)
        );
        assert_eq!(
            prices.rate("dall-e-3").unwrap().per_image,
            Some(40_000_000_000)
        );
        assert!(prices.rate("sample_spec").is_none());
        // Gemini's, by the name its API uses (thoughts are completion
        // tokens, at the output rate).
        let flash = prices.rate("gemini-2.5-flash").unwrap();
        assert_eq!(
            (
                flash.tokens.input,
                flash.tokens.output,
                flash.tokens.cached_input
            ),
            (300_000, 2_500_000, 30_000)
        );
        assert_eq!(prices.len(), 10);
        let err = Prices::load(&Config {
            prices_file: Some("/nonexistent/prices.json".into()),
            ..Config::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("prices_file"));
    }
}
