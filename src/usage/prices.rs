//! Prices: what a model's tokens cost, from the operator's `prices` and
//! LiteLLM's `model_prices_and_context_window.json` (`prices_file`), and
//! the cost of one request's tokens in an exact unit.
//!
//! Money is never a float sum: a rate is held in pico-dollars per token
//! (1 USD per 1M tokens = 1,000,000 pico-dollars a token), a cost in
//! nano-dollars (what records and daily totals store), converted to USD
//! only at the edges.

use super::Tokens;
use crate::config::{Config, Price};
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

/// What one model's tokens cost, in pico-dollars a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
    pub cache_write: i64,
}

fn pico(usd_per_token: f64) -> i64 {
    // Saturates (`as` on a float), and a price is never negative.
    (usd_per_token * 1e12).round().max(0.0) as i64
}

impl Rate {
    /// From USD per 1M tokens (the `prices` entries).
    fn per_million(p: &Price) -> Rate {
        let per_token = |usd: f64| pico(usd / 1e6);
        Rate {
            input: per_token(p.input),
            output: per_token(p.output),
            cached_input: per_token(p.cached_input.unwrap_or(p.input)),
            cache_write: per_token(p.cache_write.unwrap_or(p.input)),
        }
    }

    /// What `t` costs, in nano-dollars: cached prompt tokens at
    /// `cached_input`, cache writes at `cache_write`, the rest of the
    /// prompt at `input`, the reply at `output`.
    pub fn cost(&self, t: Tokens) -> i64 {
        let cached = t.cached.clamp(0, t.prompt.max(0));
        let written = t.cache_written.clamp(0, t.prompt.max(0) - cached);
        let plain = t.prompt.max(0) - cached - written;
        let pico = i128::from(plain) * i128::from(self.input)
            + i128::from(cached) * i128::from(self.cached_input)
            + i128::from(written) * i128::from(self.cache_write)
            + i128::from(t.completion.max(0)) * i128::from(self.output);
        // Rounded to the nearest nano-dollar.
        i64::try_from((pico + 500) / 1000).unwrap_or(i64::MAX)
    }
}

/// The price table: exact names first, then the longest matching glob.
#[derive(Debug, Default)]
pub struct Prices {
    exact: HashMap<String, Rate>,
    /// Longest pattern first.
    globs: Vec<(ModelPattern, Rate)>,
}

/// One entry of LiteLLM's table (USD per token); its other fields are
/// ignored.
#[derive(Deserialize)]
struct LiteLlmEntry {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
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
            rates.insert(name.clone(), Rate::per_million(price));
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
/// name → entry; entries without both token prices (images, audio by the
/// second) and `sample_spec` are left out.
fn from_litellm(text: &str) -> anyhow::Result<BTreeMap<String, Rate>> {
    let table: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)?;
    let mut rates = BTreeMap::new();
    for (name, value) in table {
        if name == "sample_spec" {
            continue;
        }
        let Ok(e) = LiteLlmEntry::deserialize(&value) else {
            continue;
        };
        let (Some(input), Some(output)) = (e.input_cost_per_token, e.output_cost_per_token) else {
            continue;
        };
        rates.insert(
            name,
            Rate {
                input: pico(input),
                output: pico(output),
                cached_input: pico(e.cache_read_input_token_cost.unwrap_or(input)),
                cache_write: pico(e.cache_creation_input_token_cost.unwrap_or(input)),
            },
        );
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
            cached_input: None,
            cache_write: None,
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
        let input = |m: &str| prices.rate(m).unwrap().input;
        assert_eq!(input("gpt-4o"), 2_500_000);
        assert_eq!(input("gpt-4o-mini-2024-07-18"), 150_000);
        assert_eq!(input("gpt-4o-2024-08-06"), 1_000_000);
        assert_eq!(input("o1"), 100_000_000);
        assert_eq!(prices.len(), 4);
        assert!(prices.covers("gpt-4o") && prices.covers("claude-*"));
    }

    #[test]
    fn costs_are_exact_and_price_the_cache() {
        let rate = Rate::per_million(&Price {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
        });
        // 1M plain prompt tokens at $3, 1M reply tokens at $15.
        assert_eq!(
            rate.cost(tokens(1_000_000, 1_000_000, 0, 0)),
            18_000_000_000
        );
        // 130 prompt tokens: 100 read from the cache, 20 written, 10 plain.
        let nano = 10 * 3000 + 100 * 300 + 20 * 3750 + 7 * 15000;
        assert_eq!(rate.cost(tokens(130, 7, 100, 20)), nano);
        // Cached input defaults to the input price.
        let plain = Rate::per_million(&price(0.15, 0.6));
        assert_eq!(
            plain.cost(tokens(10, 0, 10, 0)),
            plain.cost(tokens(10, 0, 0, 0))
        );
        // A tenth of a nano-dollar a token adds up exactly: 0.02 USD / 1M.
        let cheap = Rate::per_million(&price(0.02, 0.0));
        assert_eq!(cheap.cost(tokens(1_000_000, 0, 0, 0)), 20_000_000);
        // Nonsense counts cost nothing rather than wrapping.
        assert_eq!(rate.cost(tokens(-5, -1, 9, 9)), 0);
        assert_eq!(rate.cost(tokens(i64::MAX, i64::MAX, 0, 0)), i64::MAX);
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
        assert_eq!(prices.rate("gpt-4o").unwrap().input, 1_000_000);
        let claude = prices.rate("claude-sonnet-4-5").unwrap();
        assert_eq!(
            (
                claude.input,
                claude.output,
                claude.cached_input,
                claude.cache_write
            ),
            (3_000_000, 15_000_000, 300_000, 3_750_000)
        );
        let mini = prices.rate("gpt-4o-mini").unwrap();
        assert_eq!((mini.input, mini.cached_input), (150_000, 75_000));
        // sample_spec and entries priced otherwise than by the token are left out.
        assert!(prices.rate("sample_spec").is_none());
        assert!(prices.rate("dall-e-3").is_none());
        assert_eq!(prices.len(), 4);
        let err = Prices::load(&Config {
            prices_file: Some("/nonexistent/prices.json".into()),
            ..Config::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("prices_file"));
    }
}
