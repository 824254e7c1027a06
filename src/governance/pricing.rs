//! What a request costs, in integer micro-dollars.
//!
//! A catalog of list prices ships in the binary, per million tokens, for the
//! models of the supported providers (public list prices, standard tier, as of
//! late 2025). Config overrides or extends it per model. Costs round up to the
//! next micro-dollar, so the gateway never undercharges.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::providers::openai::Usage;

/// Micro-dollars (1 USD = 1,000,000).
pub type Micros = u64;

/// Prices in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: Micros,
    pub output: Micros,
    /// Prompt tokens served from the provider's cache; defaults to `input`.
    #[serde(default)]
    pub cached_input: Option<Micros>,
}

const fn p(input: Micros, cached: Micros, output: Micros) -> Price {
    Price {
        input,
        output,
        cached_input: Some(cached),
    }
}

/// USD per million tokens, written as micro-dollars: `2_500_000` is $2.50.
static CATALOG: &[(&str, Price)] = &[
    // OpenAI
    ("gpt-5", p(1_250_000, 125_000, 10_000_000)),
    ("gpt-5-mini", p(250_000, 25_000, 2_000_000)),
    ("gpt-5-nano", p(50_000, 5_000, 400_000)),
    ("gpt-4.1", p(2_000_000, 500_000, 8_000_000)),
    ("gpt-4.1-mini", p(400_000, 100_000, 1_600_000)),
    ("gpt-4.1-nano", p(100_000, 25_000, 400_000)),
    ("gpt-4o", p(2_500_000, 1_250_000, 10_000_000)),
    ("gpt-4o-mini", p(150_000, 75_000, 600_000)),
    ("o3", p(2_000_000, 500_000, 8_000_000)),
    ("o3-mini", p(1_100_000, 550_000, 4_400_000)),
    ("o4-mini", p(1_100_000, 275_000, 4_400_000)),
    ("gpt-3.5-turbo-instruct", p(1_500_000, 1_500_000, 2_000_000)),
    ("text-embedding-3-small", p(20_000, 20_000, 0)),
    ("text-embedding-3-large", p(130_000, 130_000, 0)),
    // Anthropic
    ("claude-opus-4-1", p(15_000_000, 1_500_000, 75_000_000)),
    ("claude-sonnet-4-5", p(3_000_000, 300_000, 15_000_000)),
    ("claude-sonnet-4-0", p(3_000_000, 300_000, 15_000_000)),
    ("claude-haiku-4-5", p(1_000_000, 100_000, 5_000_000)),
    ("claude-3-5-haiku", p(800_000, 80_000, 4_000_000)),
    // Google
    ("gemini-2.5-pro", p(1_250_000, 310_000, 10_000_000)),
    ("gemini-2.5-flash", p(300_000, 75_000, 2_500_000)),
    ("gemini-2.5-flash-lite", p(100_000, 25_000, 400_000)),
    ("gemini-embedding-001", p(150_000, 150_000, 0)),
    // Groq
    ("llama-3.3-70b-versatile", p(590_000, 590_000, 790_000)),
    ("llama-3.1-8b-instant", p(50_000, 50_000, 80_000)),
    ("openai/gpt-oss-120b", p(150_000, 150_000, 750_000)),
    ("openai/gpt-oss-20b", p(100_000, 100_000, 500_000)),
    // Mistral
    ("mistral-large-latest", p(2_000_000, 2_000_000, 6_000_000)),
    ("mistral-medium-latest", p(400_000, 400_000, 2_000_000)),
    ("mistral-small-latest", p(100_000, 100_000, 300_000)),
    ("codestral-latest", p(300_000, 300_000, 900_000)),
    ("mistral-embed", p(100_000, 100_000, 0)),
    // DeepSeek
    ("deepseek-chat", p(270_000, 70_000, 1_100_000)),
    ("deepseek-reasoner", p(550_000, 140_000, 2_190_000)),
    // xAI
    ("grok-4", p(3_000_000, 750_000, 15_000_000)),
    ("grok-3", p(3_000_000, 750_000, 15_000_000)),
    ("grok-3-mini", p(300_000, 75_000, 500_000)),
    // The mock provider fixture: $1 in, $2 out per million tokens.
    ("mock-1", p(1_000_000, 500_000, 2_000_000)),
    ("mock-embed", p(100_000, 100_000, 0)),
];

/// Prices by model id: the built-in catalog with overrides laid over it.
#[derive(Debug, Clone)]
pub struct Pricing {
    prices: HashMap<String, Price>,
}

impl Pricing {
    pub fn new(overrides: &HashMap<String, Price>) -> Pricing {
        let mut prices: HashMap<String, Price> =
            CATALOG.iter().map(|(m, p)| (m.to_string(), *p)).collect();
        prices.extend(overrides.iter().map(|(m, p)| (m.clone(), *p)));
        Pricing { prices }
    }

    /// The price of `model` (an upstream model id, or `provider/model`): an
    /// exact entry, else the longest catalog id that prefixes it (dated
    /// snapshots such as `gpt-4o-2024-08-06` price as `gpt-4o`).
    pub fn price(&self, provider: &str, model: &str) -> Option<Price> {
        if let Some(p) = self.prices.get(&format!("{provider}/{model}")) {
            return Some(*p);
        }
        if let Some(p) = self.prices.get(model) {
            return Some(*p);
        }
        self.prices
            .iter()
            .filter(|(id, _)| model.starts_with(id.as_str()) && model[id.len()..].starts_with('-'))
            .max_by_key(|(id, _)| id.len())
            .map(|(_, p)| *p)
    }
}

/// `tokens × per_million / 1,000,000`, rounded up.
fn scaled(tokens: u64, per_million: Micros) -> Micros {
    ((u128::from(tokens) * u128::from(per_million)).div_ceil(1_000_000)) as Micros
}

impl Price {
    /// The cost of `usage`: cached prompt tokens at the cached price, the rest
    /// of the prompt at the input price, completion at the output price.
    pub fn cost(&self, usage: &Usage) -> Micros {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        scaled(usage.prompt_tokens - cached, self.input)
            + scaled(cached, self.cached_input.unwrap_or(self.input))
            + scaled(usage.completion_tokens, self.output)
    }

    /// The most `prompt_tokens` + `max_output` tokens can cost.
    pub fn worst_case(&self, prompt_tokens: u64, max_output: u64) -> Micros {
        scaled(prompt_tokens, self.input) + scaled(max_output, self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact_and_round_up() {
        let price = Pricing::new(&HashMap::new())
            .price("openai", "gpt-4o")
            .unwrap();
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            total_tokens: 1500,
            cached_tokens: 400,
        };
        // 600 × 2.50 + 400 × 1.25 + 500 × 10.00 per million = 1500 + 500 + 5000 µ$.
        assert_eq!(price.cost(&usage), 7000);
        let one = Usage {
            prompt_tokens: 1,
            ..Default::default()
        };
        assert_eq!(
            Pricing::new(&HashMap::new())
                .price("x", "gpt-4o-mini")
                .unwrap()
                .cost(&one),
            1,
            "0.15 µ$ rounds up to 1"
        );
    }

    #[test]
    fn dated_snapshots_use_the_longest_prefix_and_overrides_win() {
        let mut o = HashMap::new();
        o.insert(
            "gpt-4o-mini".to_string(),
            Price {
                input: 1,
                output: 2,
                cached_input: None,
            },
        );
        o.insert(
            "local/my-model".to_string(),
            Price {
                input: 7,
                output: 7,
                cached_input: None,
            },
        );
        let pricing = Pricing::new(&o);
        assert_eq!(
            pricing.price("openai", "gpt-4o-2024-08-06").unwrap().input,
            2_500_000
        );
        assert_eq!(
            pricing
                .price("openai", "gpt-4o-mini-2024-07-18")
                .unwrap()
                .input,
            1
        );
        assert_eq!(pricing.price("local", "my-model").unwrap().input, 7);
        assert!(pricing.price("other", "my-model").is_none());
        assert!(
            pricing.price("openai", "gpt-4omni").is_none(),
            "a prefix must end at a dash"
        );
    }
}
