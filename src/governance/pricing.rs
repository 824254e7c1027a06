//! What a request costs, in integer micro-dollars.
//!
//! The built-in catalog is generated from LiteLLM's public model cost map
//! (`prices.json`, made by `scripts/prices/generate.py`; see
//! `scripts/prices/README.md` to refresh it), keyed `kind/model` by provider
//! kind, with input, output, cached-input, cache-write (5-minute and 1-hour)
//! and long-context rates. Config and the admin API lay overrides over it,
//! by `provider/model` or bare model id. Costs round up to the next
//! micro-dollar, so the gateway never undercharges.
//!
//! A model with no price has no cost the gateway could bound, so requests
//! under a budget refuse it (`proxy`); an operator marks a model free by
//! pricing it at 0.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::providers::bound::{Bound, SearchContext, Unpriceable};
use crate::providers::openai::{Units, Usage};

/// Micro-dollars (1 USD = 1,000,000).
pub type Micros = u64;

/// Prices in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: Micros,
    pub output: Micros,
    /// Prompt tokens served from the provider's cache; defaults to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<Micros>,
    /// Prompt tokens written to the provider's cache (5-minute lifetime);
    /// defaults to `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Micros>,
    /// Prompt tokens written to the cache for an hour; defaults to `cache_write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<Micros>,
    /// Rates for the whole request once its prompt passes a size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<LongContext>,
    /// A fee per request on top of tokens, by the search context it asks
    /// for (Perplexity's Sonar models search on every request). An override
    /// without one keeps the catalog's fee for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fee: Option<RequestFee>,
    /// Rates per unit billed besides tokens, in micro-dollars per unit
    /// (rounded up to a whole micro-dollar from the list price).
    #[serde(default, skip_serializing_if = "UnitRates::is_none")]
    pub per: UnitRates,
    /// The model bills work beyond tokens and fees that no reservation can
    /// bound (deep-research models run and bill searches and tool calls on
    /// their own): refused under a budget. Set only by the catalog; an
    /// operator's price for the model is their decision and clears it.
    #[serde(skip)]
    pub open_ended: bool,
}

/// Micro-dollars per unit of what a model bills besides tokens; absent, the
/// model has no such price (and a request that would be billed for it is
/// refused under a budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRates {
    /// A rerank query over up to 100 documents (Cohere's search unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_unit: Option<Micros>,
    /// A generated image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Micros>,
    /// A second of transcribed audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_second: Option<Micros>,
    /// A character of synthesised speech.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub character: Option<Micros>,
}

impl UnitRates {
    pub fn is_none(&self) -> bool {
        *self == UnitRates::default()
    }

    /// `units` at these rates; units without a rate cost nothing (only a
    /// key without a budget can be billed for them: [`Price::bound`]
    /// refuses the rest).
    fn cost(&self, units: &Units) -> Micros {
        [
            (units.search_units, self.search_unit),
            (units.images, self.image),
            (units.audio_seconds, self.audio_second),
            (units.characters, self.character),
        ]
        .iter()
        .map(|&(n, rate)| n.saturating_mul(rate.unwrap_or(0)))
        .fold(0, Micros::saturating_add)
    }

    /// The first kind of unit in `units` without a rate here. Search units
    /// are not among them: a reranker without a search-unit rate bills by
    /// tokens, which the bound holds as well.
    fn unpriced(&self, units: &Units) -> Option<&'static str> {
        [
            (units.images, self.image, "images"),
            (units.audio_seconds, self.audio_second, "seconds of audio"),
            (units.characters, self.character, "characters of speech"),
        ]
        .iter()
        .find(|(n, rate, _)| *n > 0 && rate.is_none())
        .map(|(_, _, what)| *what)
    }
}

/// Micro-dollars per request, by `web_search_options.search_context_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFee {
    pub low: Micros,
    pub medium: Micros,
    pub high: Micros,
}

impl RequestFee {
    pub fn at(&self, size: SearchContext) -> Micros {
        match size {
            SearchContext::Low => self.low,
            SearchContext::Medium => self.medium,
            SearchContext::High => self.high,
        }
    }
}

/// A long-context tier: a request whose prompt is above `above_tokens` is
/// priced at these rates throughout (as Anthropic and Google bill it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongContext {
    pub above_tokens: u64,
    pub input: Micros,
    pub output: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<Micros>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<Micros>,
}

/// The rates that apply to one request.
struct Rates {
    input: Micros,
    output: Micros,
    cached_input: Micros,
    cache_write: Micros,
    cache_write_1h: Micros,
}

/// The mock provider fixture's models: $1 in, $2 out per million tokens.
fn fixtures() -> [(&'static str, Price); 2] {
    let p = |input, cached, output| Price {
        input,
        output,
        cached_input: Some(cached),
        ..Price::default()
    };
    [
        ("mock-1", p(1_000_000, 500_000, 2_000_000)),
        ("mock-embed", p(100_000, 100_000, 0)),
    ]
}

/// One model of the generated catalog (`prices.json`).
#[derive(Deserialize)]
struct CatalogEntry {
    id: String,
    input: Micros,
    output: Micros,
    cached_input: Option<Micros>,
    cache_write: Option<Micros>,
    cache_write_1h: Option<Micros>,
    #[serde(default)]
    above: Vec<CatalogTier>,
    #[serde(default)]
    request_fee: Option<RequestFee>,
    #[serde(default)]
    per: UnitRates,
    /// A model the provider lists as free (moderation): priced at 0, not
    /// left unpriced.
    #[serde(default)]
    free: bool,
}

#[derive(Deserialize)]
struct CatalogTier {
    tokens: u64,
    input: Option<Micros>,
    output: Option<Micros>,
    cached_input: Option<Micros>,
    cache_write: Option<Micros>,
}

#[derive(Deserialize)]
struct CatalogFile {
    models: Vec<CatalogEntry>,
}

impl CatalogEntry {
    fn price(&self) -> Price {
        // Several tiers: the lowest threshold with the dearest rates of any,
        // so no request is ever priced below a tier it falls in.
        let long_context = self.above.iter().map(|t| t.tokens).min().map(|above| {
            let dearest =
                |f: fn(&CatalogTier) -> Option<Micros>| self.above.iter().filter_map(f).max();
            LongContext {
                above_tokens: above,
                input: dearest(|t| t.input).unwrap_or(self.input).max(self.input),
                output: dearest(|t| t.output)
                    .unwrap_or(self.output)
                    .max(self.output),
                cached_input: dearest(|t| t.cached_input).or(self.cached_input),
                cache_write: dearest(|t| t.cache_write).or(self.cache_write),
            }
        });
        Price {
            input: self.input,
            output: self.output,
            cached_input: self.cached_input,
            cache_write: self.cache_write,
            cache_write_1h: self.cache_write_1h,
            long_context,
            request_fee: self.request_fee,
            per: self.per,
            open_ended: self.id.contains("deep-research"),
        }
    }
}

/// The generated catalog, parsed once.
fn catalog() -> &'static HashMap<String, Price> {
    static CATALOG: OnceLock<HashMap<String, Price>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let file: CatalogFile = serde_json::from_str(include_str!("prices.json"))
            .expect("the bundled price catalog parses");
        // A list price of nothing is not an operator's decision that a model
        // is free: such entries stay unpriced until an override says so.
        file.models
            .iter()
            .filter(|m| m.input > 0 || m.output > 0 || !m.per.is_none() || m.free)
            .map(|m| (m.id.clone(), m.price()))
            .collect()
    })
}

/// Prices by model id: the built-in catalog with overrides laid over it.
#[derive(Debug, Clone)]
pub struct Pricing {
    overrides: HashMap<String, Price>,
}

/// Whether `suffix` (what follows a priced id in a requested one) names a
/// dated snapshot or alias of that same model: `-2024-08-06`, `-20250929`,
/// `-0613`, `-001`, `-latest`, `@20240620`. Any other suffix (`-pro`,
/// `-mini`, `-preview`) may be another model at another price.
fn is_snapshot_suffix(suffix: &str) -> bool {
    let Some(rest) = suffix
        .strip_prefix('-')
        .or_else(|| suffix.strip_prefix('@'))
    else {
        return false;
    };
    rest == "latest"
        || (!rest.is_empty()
            && rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && rest.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

impl Pricing {
    pub fn new(overrides: &HashMap<String, Price>) -> Pricing {
        let mut all: HashMap<String, Price> = fixtures()
            .iter()
            .map(|(m, p)| (m.to_string(), *p))
            .collect();
        all.extend(overrides.iter().map(|(m, p)| (m.clone(), *p)));
        Pricing { overrides: all }
    }

    /// The price of `model` at the provider named `provider` of preset
    /// `kind`. Overrides first — for `provider/model`, then the bare
    /// `model` — then the catalog's `kind/model`; at each layer the id
    /// itself, then the ids it is a dated snapshot of (`gpt-4o-2024-08-06`
    /// prices as `gpt-4o`, but `o3-pro` never as `o3`). So an operator's
    /// price for a model also covers its snapshots.
    pub fn price(&self, provider: &str, kind: &str, model: &str) -> Option<Price> {
        self.price_of_any(provider, kind, &[model])
    }

    /// The price of the first of `ids` (the most specific first) that has
    /// one, an override of any of them winning over the catalog's of any:
    /// images are priced by `quality/size/model`, then `size/model`, then
    /// `model`, and an operator's price for `model` covers every size.
    pub fn price_of_any(&self, provider: &str, kind: &str, ids: &[&str]) -> Option<Price> {
        let overridden = |m: &str| {
            self.overrides
                .get(&format!("{provider}/{m}"))
                .or_else(|| self.overrides.get(m))
                .copied()
        };
        let listed = |m: &str| catalog().get(&format!("{kind}/{m}")).copied();
        let listed_price = || {
            ids.iter()
                .find_map(|id| snapshot_bases(id).find_map(listed))
        };
        match ids
            .iter()
            .find_map(|id| snapshot_bases(id).find_map(overridden))
        {
            // An override of token rates alone does not make the model's
            // per-request fee or unit rates go away.
            Some(mut p) => {
                let listed = listed_price();
                p.request_fee = p.request_fee.or(listed.and_then(|l| l.request_fee));
                if p.per.is_none()
                    && let Some(l) = listed
                {
                    p.per = l.per;
                }
                Some(p)
            }
            None => listed_price(),
        }
    }
}

/// `model`, then each id it is a dated snapshot of, longest first.
fn snapshot_bases(model: &str) -> impl Iterator<Item = &str> {
    std::iter::once(model).chain(
        model
            .char_indices()
            .rev()
            .filter(|&(i, c)| (c == '-' || c == '@') && is_snapshot_suffix(&model[i..]))
            .map(|(i, _)| &model[..i]),
    )
}

/// `Σ tokens × per_million / 1,000,000` over `parts`, rounded up once (so
/// that a sum of parts never rounds above the same tokens at one rate).
fn scaled(parts: &[(u64, Micros)]) -> Micros {
    let m: u128 = parts
        .iter()
        .map(|&(tokens, rate)| u128::from(tokens) * u128::from(rate))
        // Upstream token counts and admin rates are any u64: saturate.
        .fold(0u128, u128::saturating_add);
    Micros::try_from(m.div_ceil(1_000_000)).unwrap_or(Micros::MAX)
}

impl Price {
    /// The rates for a request whose prompt is `prompt_tokens` long.
    fn rates(&self, prompt_tokens: u64) -> Rates {
        let (input, output, cached, write) = match self.long_context {
            Some(l) if prompt_tokens > l.above_tokens => (
                l.input,
                l.output,
                l.cached_input.or(self.cached_input),
                l.cache_write.or(self.cache_write),
            ),
            _ => (self.input, self.output, self.cached_input, self.cache_write),
        };
        let cache_write = write.unwrap_or(input);
        Rates {
            input,
            output,
            cached_input: cached.unwrap_or(input),
            cache_write,
            cache_write_1h: self.cache_write_1h.unwrap_or(cache_write).max(cache_write),
        }
    }

    /// The cost of `usage`: cached prompt tokens at the cached price, cache
    /// writes at their write prices, the rest of the prompt at the input
    /// price, completion at the output price — at the long-context rates
    /// when the prompt is past that tier.
    pub fn cost(&self, usage: &Usage) -> Micros {
        let r = self.rates(usage.prompt_tokens);
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let written = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
        let hour = usage.cache_write_1h_tokens.min(written);
        let plain = usage.prompt_tokens - cached - written;
        scaled(&[
            (plain, r.input),
            (cached, r.cached_input),
            (written - hour, r.cache_write),
            (hour, r.cache_write_1h),
            (usage.completion_tokens, r.output),
        ])
        .saturating_add(self.per.cost(&usage.units))
    }

    /// The fee of one request asking for `size` of search context (0 for a
    /// model without one).
    pub fn request_fee(&self, size: SearchContext) -> Micros {
        self.request_fee.map_or(0, |f| f.at(size))
    }

    /// The most the request bounded by `b` can cost: [`Price::worst_case`]
    /// of its tokens plus its per-request fee. `web_search_options` on a
    /// model whose price has no search fee is refused: that search is
    /// billed by the provider at a rate the catalog does not have.
    ///
    /// For the usage of the request `b` bounds,
    /// `cost(usage) + request_fee(size) ≤ bound(b)`, where `size` is the
    /// search context the same body asks for (absent: `low`).
    pub fn bound(&self, b: &Bound) -> Result<Micros, Unpriceable> {
        if self.open_ended {
            return Err(Unpriceable {
                field: "model".into(),
                why: "this model runs searches and tool calls of its own that are billed beyond \
                      tokens, which no reservation can bound; an operator who prices it \
                      (PUT /api/pricing) takes that on",
            });
        }
        let fee = match (self.request_fee, b.web_search) {
            (Some(f), size) => f.at(size.unwrap_or_default()),
            (None, Some(_)) => {
                return Err(Unpriceable {
                    field: "web_search_options".into(),
                    why: "it is billed beyond tokens, and this model's price has no search fee",
                });
            }
            (None, None) => 0,
        };
        if let Some(what) = self.per.unpriced(&b.units) {
            return Err(Unpriceable {
                field: "model".into(),
                why: match what {
                    "images" => "it is billed per image, and this model's price has none",
                    "seconds of audio" => {
                        "it is billed per second of audio, and this model's price has none"
                    }
                    _ => "it is billed per character, and this model's price has none",
                },
            });
        }
        Ok(self
            .worst_case(b.prompt_tokens, b.output_tokens)
            .saturating_add(fee)
            .saturating_add(self.per.cost(&b.units)))
    }

    /// The most `prompt_tokens` + `max_output` tokens can cost: every prompt
    /// token at the dearest prompt rate (a cache write can cost more than
    /// plain input) and the output at the output rate, at the tier the
    /// prompt may fall in.
    ///
    /// For any usage with `prompt_tokens` ≤ the bound and
    /// `completion_tokens` ≤ `max_output`, `cost(usage) ≤ worst_case(..)`:
    /// this is what makes a reservation a ceiling (tested below).
    pub fn worst_case(&self, prompt_tokens: u64, max_output: u64) -> Micros {
        // Both tiers' rates: a tier is never assumed cheaper than the base.
        let (base, tier) = (self.rates(0), self.rates(prompt_tokens));
        let dearest_prompt = [&base, &tier]
            .iter()
            .flat_map(|r| [r.input, r.cached_input, r.cache_write, r.cache_write_1h])
            .max()
            .unwrap_or(0);
        let output = base.output.max(tier.output);
        scaled(&[(prompt_tokens, dearest_prompt), (max_output, output)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, cached: u64, written: u64, hour: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cached_tokens: cached,
            cache_write_tokens: written,
            cache_write_1h_tokens: hour,
            units: Units::default(),
        }
    }

    #[test]
    fn costs_are_exact_and_round_up() {
        let price = Pricing::new(&HashMap::new())
            .price("openai", "openai", "gpt-4o")
            .unwrap();
        // 600 × 2.50 + 400 × 1.25 + 500 × 10.00 per million = 1500 + 500 + 5000 µ$.
        assert_eq!(price.cost(&usage(1000, 400, 0, 0, 500)), 7000);
        let mini = Pricing::new(&HashMap::new())
            .price("x", "openai", "gpt-4o-mini")
            .unwrap();
        assert_eq!(
            mini.cost(&usage(1, 0, 0, 0, 0)),
            1,
            "0.15 µ$ rounds up to 1"
        );
    }

    #[test]
    fn cache_writes_and_long_prompts_are_charged_at_their_own_rates() {
        let p = Price {
            input: 3_000_000,
            output: 15_000_000,
            cached_input: Some(300_000),
            cache_write: Some(3_750_000),
            cache_write_1h: Some(6_000_000),
            long_context: Some(LongContext {
                above_tokens: 200_000,
                input: 6_000_000,
                output: 22_500_000,
                cached_input: Some(600_000),
                cache_write: Some(7_500_000),
            }),
            request_fee: None,
            per: UnitRates::default(),
            open_ended: false,
        };
        // 100 plain + 200 read + 300 written (100 of them for an hour) + 10 out.
        let u = usage(600, 200, 300, 100, 10);
        assert_eq!(p.cost(&u), 300 + 60 + 750 + 600 + 150);
        let long = usage(300_000, 0, 0, 0, 1000);
        assert_eq!(p.cost(&long), 1_800_000 + 22_500);
    }

    #[test]
    fn the_worst_case_bounds_every_usage_within_it() {
        let catalog_prices = catalog().values().copied().take(400);
        let prices: Vec<Price> = catalog_prices
            .chain(fixtures().iter().map(|(_, p)| *p))
            .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let p = prices[rng.usize(..prices.len())];
            let bound_prompt = rng.u64(0..400_000);
            let bound_output = rng.u64(0..100_000);
            let prompt = rng.u64(0..=bound_prompt);
            let cached = rng.u64(0..=prompt);
            let written = rng.u64(0..=prompt - cached);
            let hour = rng.u64(0..=written);
            let u = usage(prompt, cached, written, hour, rng.u64(0..=bound_output));
            assert!(
                p.cost(&u) <= p.worst_case(bound_prompt, bound_output),
                "{p:?} {u:?} {bound_prompt} {bound_output}"
            );
        }
    }

    #[test]
    fn a_prompt_written_to_the_cache_for_an_hour_stays_within_the_bound() {
        // A `"ttl": "1h"` marker can make every prompt token an hour's
        // write, the dearest prompt rate of the Anthropic models.
        let anthropic: Vec<(&String, &Price)> = catalog()
            .iter()
            .filter(|(id, p)| id.starts_with("anthropic/") && p.cache_write_1h.is_some())
            .collect();
        assert!(
            anthropic.len() > 5,
            "the catalog has Anthropic's 1-hour rates"
        );
        for (id, p) in anthropic {
            let hour = p.cache_write_1h.unwrap();
            assert!(hour >= p.input, "{id}: an hour's write is dear");
            for prompt in [1, 999, 200_000, 350_000] {
                let u = usage(prompt, 0, prompt, prompt, 1000);
                assert!(p.cost(&u) <= p.worst_case(prompt, 1000), "{id} {prompt}");
                let b = Bound {
                    prompt_tokens: prompt,
                    output_tokens: 1000,
                    web_search: None,
                    ..Bound::default()
                };
                assert_eq!(p.bound(&b), Ok(p.worst_case(prompt, 1000)));
            }
        }
    }

    #[test]
    fn deep_research_models_cannot_be_bounded_until_an_operator_prices_them() {
        let b = Bound {
            prompt_tokens: 100,
            output_tokens: 50,
            web_search: None,
            ..Bound::default()
        };
        let pricing = Pricing::new(&HashMap::new());
        for (kind, model) in [
            ("perplexity", "sonar-deep-research"),
            ("openai", "o3-deep-research"),
            ("openai", "o4-mini-deep-research-2025-06-26"),
        ] {
            let p = pricing.price("p", kind, model).unwrap();
            let refused = p.bound(&b).unwrap_err();
            assert_eq!(refused.field, "model", "{kind}/{model}");
        }
        assert!(
            pricing
                .price("p", "perplexity", "sonar")
                .unwrap()
                .bound(&b)
                .is_ok()
        );
        let mut o = HashMap::new();
        o.insert(
            "sonar-deep-research".to_string(),
            Price {
                input: 2_000_000,
                output: 8_000_000,
                ..Price::default()
            },
        );
        let priced = Pricing::new(&o)
            .price("p", "perplexity", "sonar-deep-research")
            .unwrap();
        assert!(
            priced.bound(&b).is_ok(),
            "the operator's price is their call"
        );
    }

    #[test]
    fn search_fees_are_priced_per_request_and_bounded() {
        let pricing = Pricing::new(&HashMap::new());
        let sonar = pricing.price("pplx", "perplexity", "sonar").unwrap();
        assert_eq!(
            sonar.request_fee,
            Some(RequestFee {
                low: 5000,
                medium: 8000,
                high: 12000
            }),
            "$5 / $8 / $12 per thousand requests"
        );
        let b = |web_search| Bound {
            prompt_tokens: 100,
            output_tokens: 50,
            web_search,
            ..Bound::default()
        };
        let tokens = sonar.worst_case(100, 50);
        assert_eq!(sonar.bound(&b(None)), Ok(tokens + 5000), "low by default");
        assert_eq!(
            sonar.bound(&b(Some(SearchContext::High))),
            Ok(tokens + 12000)
        );
        let u = usage(100, 0, 0, 0, 50);
        for size in [
            SearchContext::Low,
            SearchContext::Medium,
            SearchContext::High,
        ] {
            let cost = sonar.cost(&u) + sonar.request_fee(size);
            assert!(cost <= sonar.bound(&b(Some(size))).unwrap());
        }
        // A model whose price has no fee cannot bound a search.
        let gpt = pricing.price("openai", "openai", "gpt-4o").unwrap();
        assert_eq!(gpt.request_fee(SearchContext::High), 0);
        let refused = gpt.bound(&b(Some(SearchContext::Low))).unwrap_err();
        assert_eq!(refused.field, "web_search_options");
        // An override of token rates keeps the catalog's fee; one with a fee wins.
        let mut o = HashMap::new();
        let cheap = Price {
            input: 1,
            output: 1,
            ..Price::default()
        };
        o.insert("sonar".to_string(), cheap);
        let free_search = RequestFee {
            low: 0,
            medium: 0,
            high: 0,
        };
        o.insert(
            "pplx-free/sonar".to_string(),
            Price {
                request_fee: Some(free_search),
                ..cheap
            },
        );
        let pricing = Pricing::new(&o);
        let p = pricing.price("pplx", "perplexity", "sonar").unwrap();
        assert_eq!((p.input, p.request_fee), (1, sonar.request_fee));
        let p = pricing.price("pplx-free", "perplexity", "sonar").unwrap();
        assert_eq!(p.request_fee(SearchContext::High), 0);
    }

    #[test]
    fn only_snapshots_price_as_their_base_model_and_overrides_win() {
        let mut o = HashMap::new();
        let price = |input| Price {
            input,
            output: 2,
            ..Price::default()
        };
        o.insert("gpt-4o-mini".to_string(), price(1));
        o.insert("local/my-model".to_string(), price(7));
        let pricing = Pricing::new(&o);
        let gpt4o = pricing.price("openai", "openai", "gpt-4o").unwrap();
        assert_eq!(
            pricing
                .price("openai", "openai", "gpt-4o-2024-08-06")
                .unwrap()
                .input,
            gpt4o.input
        );
        assert_eq!(
            pricing
                .price("openai", "openai", "gpt-4o-mini-2024-07-18")
                .unwrap()
                .input,
            1
        );
        assert_eq!(pricing.price("local", "vllm", "my-model").unwrap().input, 7);
        assert!(pricing.price("other", "vllm", "my-model").is_none());
        assert!(pricing.price("openai", "openai", "gpt-4omni").is_none());
        assert!(
            pricing
                .price("openai", "openai", "gpt-4o-turbo-max")
                .is_none(),
            "a suffix that is not a date may be another model"
        );
        let o3 = pricing.price("openai", "openai", "o3").unwrap();
        let o3_pro = pricing.price("openai", "openai", "o3-pro").unwrap();
        assert!(o3_pro.input > o3.input, "o3-pro is not priced as o3");
        assert!(
            pricing.price("azure-eu", "azure", "gpt-4o").is_some(),
            "a provider named freely is priced by its kind"
        );
    }

    #[test]
    fn units_beyond_tokens_are_priced_from_the_catalog_and_bounded() {
        let pricing = Pricing::new(&HashMap::new());
        let per = |kind, ids: &[&str]| pricing.price_of_any("p", kind, ids).unwrap().per;
        assert_eq!(
            per("openai", &["whisper-1"]).audio_second,
            Some(100),
            "$0.006 a minute"
        );
        assert_eq!(
            per("openai", &["tts-1"]).character,
            Some(15),
            "$15 per million characters"
        );
        assert_eq!(
            per("cohere", &["rerank-v3.5"]).search_unit,
            Some(2_000),
            "$2 per 1,000 searches"
        );
        let sized = [
            "low/1024-x-1024/gpt-image-1",
            "1024-x-1024/gpt-image-1",
            "gpt-image-1",
        ];
        assert_eq!(per("openai", &sized).image, Some(11_000));
        assert_eq!(
            per("openai", &["gpt-image-1"]).image,
            Some(250_000),
            "unsized: the dearest size"
        );
        let moderation = pricing
            .price("p", "openai", "omni-moderation-latest")
            .expect("free, not unpriced");
        assert_eq!(moderation.cost(&usage(1000, 0, 0, 0, 0)), 0);

        // An override of the bare model wins over every size's catalog entry.
        let mut o = HashMap::new();
        o.insert(
            "gpt-image-1".to_string(),
            Price {
                per: UnitRates {
                    image: Some(1),
                    ..UnitRates::default()
                },
                ..Price::default()
            },
        );
        o.insert("whisper-1".to_string(), Price::default());
        let p = Pricing::new(&o);
        assert_eq!(
            p.price_of_any("p", "openai", &sized).unwrap().per.image,
            Some(1)
        );
        assert_eq!(
            p.price("p", "openai", "whisper-1")
                .unwrap()
                .per
                .audio_second,
            Some(100),
            "an override without rates keeps the catalog's"
        );

        // The bound holds every usage within it, and a unit without a rate
        // is refused (search units excepted: token-priced rerankers).
        let price = Price {
            input: 1_000_000,
            per: UnitRates {
                search_unit: Some(2_000),
                image: Some(40_000),
                audio_second: Some(100),
                character: Some(15),
            },
            ..Price::default()
        };
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..2_000 {
            let b = Bound {
                prompt_tokens: rng.u64(0..10_000),
                units: Units {
                    search_units: rng.u64(0..10),
                    images: rng.u64(0..11),
                    audio_seconds: rng.u64(0..5_000),
                    characters: rng.u64(0..4_096),
                },
                ..Bound::default()
            };
            let u = Usage {
                prompt_tokens: rng.u64(0..=b.prompt_tokens),
                units: Units {
                    search_units: rng.u64(0..=b.units.search_units),
                    images: rng.u64(0..=b.units.images),
                    audio_seconds: rng.u64(0..=b.units.audio_seconds),
                    characters: rng.u64(0..=b.units.characters),
                },
                ..Usage::default()
            };
            assert!(price.cost(&u) <= price.bound(&b).unwrap(), "{u:?} {b:?}");
        }
        let tokens_only = Price {
            input: 1,
            ..Price::default()
        };
        let b = |units| Bound {
            units,
            ..Bound::default()
        };
        let refused = tokens_only.bound(&b(Units {
            characters: 5,
            ..Units::default()
        }));
        assert!(refused.unwrap_err().why.contains("per character"));
        assert!(
            tokens_only
                .bound(&b(Units {
                    search_units: 1,
                    ..Units::default()
                }))
                .is_ok()
        );
    }

    #[test]
    fn the_catalog_covers_every_presets_models() {
        let pricing = Pricing::new(&HashMap::new());
        for kind in crate::providers::presets::ProviderKind::ALL {
            let name = kind.preset().name;
            for model in kind.preset().models {
                assert!(
                    pricing.price(name, name, model).is_some(),
                    "{name}/{model} has no price"
                );
            }
        }
    }
}
