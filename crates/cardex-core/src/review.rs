//! A person's review of a card (DESIGN §12): a status, and corrections
//! laid over the machine's values, which never change.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a card's review stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Nobody has looked yet (or a review was taken back).
    #[default]
    Unreviewed,
    /// A person checked the values (with their corrections) and found them right.
    Verified,
    /// A person wants another look.
    NeedsAttention,
}

impl ReviewStatus {
    /// The name stored and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreviewed => "unreviewed",
            Self::Verified => "verified",
            Self::NeedsAttention => "needs_attention",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Unreviewed, Self::Verified, Self::NeedsAttention]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// The values exports hold: the machine's, with the corrections over
/// them (a correction to `null` says the card has none). A failed card has
/// no machine values: its values are the corrections alone.
pub fn overlay(
    machine: Option<&Map<String, Value>>,
    corrections: &Map<String, Value>,
) -> Map<String, Value> {
    let mut values = machine.cloned().unwrap_or_default();
    for (field, value) in corrections {
        values.insert(field.clone(), value.clone());
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn corrections_lie_over_the_machine_values() {
        let machine = json!({"title": "Moby Dik", "year": 1851, "place": "London"});
        let corrections = json!({"title": "Moby Dick", "place": null});
        let values = overlay(machine.as_object(), corrections.as_object().unwrap());
        assert_eq!(
            Value::Object(values),
            json!({"title": "Moby Dick", "year": 1851, "place": null})
        );
        let by_hand = overlay(None, corrections.as_object().unwrap());
        assert_eq!(Value::Object(by_hand), corrections);
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            ReviewStatus::Unreviewed,
            ReviewStatus::Verified,
            ReviewStatus::NeedsAttention,
        ] {
            assert_eq!(ReviewStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReviewStatus::parse("done"), None);
    }
}
