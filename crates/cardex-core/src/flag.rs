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
