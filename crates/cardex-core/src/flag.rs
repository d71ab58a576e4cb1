//! Flags: what a result row says about its own likely mistakes (DESIGN
//! §13), so a person reviewing thousands of cards knows where to look.

use serde::{Deserialize, Serialize};

/// The kinds of likely mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagCode {
    /// No active field was found on the card.
    Empty,
    /// A field's confidence is under the threshold.
    LowConfidence,
    /// A text value is not in the card's own OCR text: a likely invention.
    NotInText,
    /// The value could not be read as its type; it is kept as written.
    InvalidValue,
    /// The model's answer was cut off.
    TruncatedAnswer,
    /// The model's answer repeated itself.
    Repetition,
}

impl FlagCode {
    /// The code as stored and sent (`low_confidence`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::LowConfidence => "low_confidence",
            Self::NotInText => "not_in_text",
            Self::InvalidValue => "invalid_value",
            Self::TruncatedAnswer => "truncated_answer",
            Self::Repetition => "repetition",
        }
    }
}

/// One flag on a result row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// What kind of mistake.
    pub code: FlagCode,
    /// The field it concerns, if it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, in words.
    pub message: String,
}

impl Flag {
    /// A flag on one field.
    pub fn on(field: &str, code: FlagCode, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    /// A flag on the whole row.
    pub fn row(code: FlagCode, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }
}

/// The flags a result earns by its values and confidences (DESIGN §13):
/// `empty` when none of the active `fields` has a value, and
/// `low_confidence` for each value whose confidence is under `threshold`.
pub fn review_flags(
    fields: &[crate::Field],
    values: &serde_json::Map<String, serde_json::Value>,
    confidence: &serde_json::Map<String, serde_json::Value>,
    threshold: f64,
) -> Vec<Flag> {
    use serde_json::Value;
    let has_value = |v: Option<&Value>| match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    };
    let active: Vec<&crate::Field> = fields.iter().filter(|f| f.active).collect();
    let mut flags = Vec::new();
    if !active.is_empty() && !active.iter().any(|f| has_value(values.get(&f.name))) {
        flags.push(Flag::row(
            FlagCode::Empty,
            "none of the fields was found on this card",
        ));
    }
    for f in active {
        let Some(c) = confidence.get(&f.name).and_then(Value::as_f64) else {
            continue;
        };
        if c < threshold && has_value(values.get(&f.name)) {
            flags.push(Flag::on(
                &f.name,
                FlagCode::LowConfidence,
                format!(
                    "the engine was unsure of this value (confidence {c:.2}, under {threshold})"
                ),
            ));
        }
    }
    flags
}

/// Whether `text` loops: some piece of 1–20 characters repeated five or
/// more times in a row, covering at least half of a value of 20 or more
/// characters (a model stuck on `ha ha ha…` or `1. 1. 1. …`).
pub fn repeats_itself(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n < 20 {
        return false;
    }
    for period in 1..=20.min(n / 5) {
        let mut run = 0;
        for i in period..n {
            if chars[i] == chars[i - period] {
                run += 1;
                if run + period >= (5 * period).max(n / 2) {
                    return true;
                }
            } else {
                run = 0;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_they_serialise() {
        use FlagCode::*;
        for code in [
            Empty,
            LowConfidence,
            NotInText,
            InvalidValue,
            TruncatedAnswer,
            Repetition,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
    use crate::{Field, FieldType};
    use serde_json::json;

    fn fields() -> Vec<Field> {
        vec![
            Field::new("title", FieldType::Text),
            Field::new("year", FieldType::Integer),
            Field {
                active: false,
                ..Field::new("notes", FieldType::Text)
            },
        ]
    }

    fn map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_row_of_blanks_is_empty_and_unsure_values_are_low_confidence() {
        let codes = |values, conf| {
            review_flags(&fields(), &map(values), &map(conf), 0.6)
                .into_iter()
                .map(|f| (f.code, f.field))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            codes(
                json!({"title": null, "year": null, "notes": "x"}),
                json!({})
            ),
            [(FlagCode::Empty, None)]
        );
        assert_eq!(
            codes(json!({"title": "  ", "year": null}), json!({})).len(),
            1
        );
        assert_eq!(
            codes(
                json!({"title": "Moby", "year": 1851}),
                json!({"title": 0.59, "year": 0.9})
            ),
            [(FlagCode::LowConfidence, Some("title".to_owned()))]
        );
        assert!(
            codes(
                json!({"title": "Moby", "year": null}),
                json!({"title": null, "year": 0.1})
            )
            .is_empty()
        );
    }

    #[test]
    fn loops_are_told_from_ordinary_text() {
        assert!(repeats_itself("ha ha ha ha ha ha ha ha ha ha ha ha"));
        assert!(repeats_itself(
            "Moby Dick 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1."
        ));
        assert!(repeats_itself("....................."));
        assert!(!repeats_itself(
            "Die hüftnahen Femurosteotomien unter Berücksichtigung"
        ));
        assert!(!repeats_itself(
            "Aldersforandringer af den normale humane erythrocyt"
        ));
        assert!(!repeats_itself("1939"));
        assert!(!repeats_itself("KA7307 .E93 KA7307"));
    }
}
