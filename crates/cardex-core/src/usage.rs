//! What reading cards costs (DESIGN §14): tokens, requests and time, what
//! they cost at the configured prices, and a batch's budget.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Tokens, requests and engine time: of one answer, one card (every
/// attempt summed) or a whole batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the requests (the image included).
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Both, as the server counted them.
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt tokens the server had cached (a part of `prompt_tokens`),
    /// where it says.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Requests made, retries included.
    #[serde(default)]
    pub requests: u64,
    /// Milliseconds the engine took, summed over the requests.
    #[serde(default)]
    pub ms: u64,
}

impl Usage {
    /// The token counts of an OpenAI-compatible answer's `usage` object
    /// (`total_tokens` is their sum when the server leaves it out;
    /// `prompt_tokens_details.cached_tokens` where given); `None` when the
    /// answer has no usage.
    pub fn from_openai(usage: &Value) -> Option<Self> {
        let count = |v: &Value| v.as_u64();
        let prompt = count(&usage["prompt_tokens"]);
        let completion = count(&usage["completion_tokens"]);
        if prompt.is_none() && completion.is_none() {
            return None;
        }
        let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
        Some(Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: count(&usage["total_tokens"]).unwrap_or(prompt + completion),
            cached_tokens: count(&usage["prompt_tokens_details"]["cached_tokens"]).unwrap_or(0),
            requests: 0,
            ms: 0,
        })
    }

    /// Adds `other` to this.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
        self.cached_tokens += other.cached_tokens;
        self.requests += other.requests;
        self.ms += other.ms;
    }
}

/// What a model's tokens cost, in US dollars per million.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Per million prompt tokens.
    pub input: f64,
    /// Per million generated tokens.
    pub output: f64,
}

impl Prices {
    /// What `usage`'s tokens cost, in US dollars, to a millionth of a dollar.
    pub fn cost(&self, usage: &Usage) -> f64 {
        self.cost_of(usage.prompt_tokens as f64, usage.completion_tokens as f64)
    }

    /// What so many prompt and generated tokens cost (an estimate's are
    /// fractional).
    pub fn cost_of(&self, prompt_tokens: f64, completion_tokens: f64) -> f64 {
        let dollars = (prompt_tokens * self.input + completion_tokens * self.output) / 1e6;
        (dollars * 1e6).round() / 1e6
    }
}

/// A batch's budget: reaching either bound pauses it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    /// Most tokens (prompt and generated) the batch may use.
    pub max_tokens: Option<u64>,
    /// Most US dollars it may cost, at the configured prices.
    pub max_cost: Option<f64>,
}

impl Budget {
    /// Why `usage` has reached the budget, in words, or `None` while it
    /// has not. A cost bound without prices cannot be reached.
    pub fn reached(&self, usage: &Usage, prices: Option<&Prices>) -> Option<String> {
        if let Some(max) = self.max_tokens
            && usage.total_tokens >= max
        {
            return Some(format!(
                "the batch reached its budget of {max} tokens ({} used); raise the budget to go on",
                usage.total_tokens
            ));
        }
        if let (Some(max), Some(prices)) = (self.max_cost, prices) {
            let cost = prices.cost(usage);
            if cost >= max {
                return Some(format!(
                    "the batch reached its budget of ${max:.2} (${cost:.2} spent); raise the budget to go on"
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_an_openai_usage_object() {
        let u = Usage::from_openai(&json!({"prompt_tokens": 1200, "completion_tokens": 80,
            "total_tokens": 1280, "prompt_tokens_details": {"cached_tokens": 1024}}))
        .unwrap();
        assert_eq!(
            (
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.cached_tokens
            ),
            (1200, 80, 1280, 1024)
        );
        let u = Usage::from_openai(&json!({"prompt_tokens": 10, "completion_tokens": 5})).unwrap();
        assert_eq!(u.total_tokens, 15);
        assert_eq!(Usage::from_openai(&Value::Null), None);
        assert_eq!(Usage::from_openai(&json!({"prompt_tokens": "many"})), None);
    }

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        let prices = Prices {
            input: 0.15,
            output: 0.60,
        };
        let usage = Usage {
            prompt_tokens: 1_300_000,
            completion_tokens: 250_000,
            total_tokens: 1_550_000,
            ..Usage::default()
        };
        // 1.3 × 0.15 + 0.25 × 0.60 = 0.195 + 0.15
        assert_eq!(prices.cost(&usage), 0.345);
        assert_eq!(prices.cost(&Usage::default()), 0.0);
        let one = Usage {
            prompt_tokens: 1,
            ..Usage::default()
        };
        // A millionth of 0.15 dollars rounds to nothing at a millionth.
        assert_eq!(prices.cost(&one), 0.0);
        assert_eq!(prices.cost_of(2_000_000.0, 0.0), 0.3);
    }

    #[test]
    fn a_budget_is_reached_at_its_bound() {
        let usage = |tokens: u64| Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
            ..Usage::default()
        };
        let budget = Budget {
            max_tokens: Some(1000),
            max_cost: None,
        };
        assert_eq!(budget.reached(&usage(999), None), None);
        assert!(
            budget
                .reached(&usage(1000), None)
                .unwrap()
                .contains("1000 tokens")
        );
        let prices = Prices {
            input: 10.0,
            output: 10.0,
        };
        let budget = Budget {
            max_tokens: None,
            max_cost: Some(0.01),
        };
        assert_eq!(budget.reached(&usage(999), Some(&prices)), None);
        assert!(budget.reached(&usage(1000), Some(&prices)).is_some());
        // Without prices a cost bound says nothing.
        assert_eq!(budget.reached(&usage(1_000_000), None), None);
        assert_eq!(Budget::default().reached(&usage(u64::MAX), None), None);
    }
}
