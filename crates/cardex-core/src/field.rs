//! Fields: what the user wants extracted from each card, and the rules a
//! field list must follow before the server accepts it.

use serde::{Deserialize, Serialize};

/// Most fields one batch or template may have.
pub const MAX_FIELDS: usize = 100;
/// Longest field name, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// The value type of a field; decides its JSON Schema and how answers are coerced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text.
    Text,
    /// Any number.
    Number,
    /// A whole number.
    Integer,
    /// A date, ISO 8601 (`YYYY-MM-DD`, or `YYYY-MM` / `YYYY` when that is all the card says).
    Date,
    /// Yes or no.
    Boolean,
    /// A list of text values.
    List,
}

impl FieldType {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Date => "date",
            Self::Boolean => "boolean",
            Self::List => "list",
        }
    }
}

/// One field to extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// An identifier: a letter, then letters, digits or `_` (at most 64).
    pub name: String,
    /// What the field means, in the user's words; sent to the model.
    #[serde(default)]
    pub description: String,
    /// The value type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Inactive fields are kept but not extracted.
    #[serde(default = "default_active")]
    pub active: bool,
}

fn default_active() -> bool {
    true
}

impl Field {
    /// A field with an empty description, active.
    pub fn new(name: &str, kind: FieldType) -> Self {
        Self {
            name: name.to_owned(),
            description: String::new(),
            kind,
            active: true,
        }
    }

    /// The same field with a description.
    pub fn describe(mut self, description: &str) -> Self {
        self.description = description.to_owned();
        self
    }
}

/// Why a field list was refused; the message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// More than [`MAX_FIELDS`].
    #[error("at most {MAX_FIELDS} fields are allowed, got {0}")]
    TooMany(usize),
    /// The name is not an identifier.
    #[error(
        "fields[{index}].name {name:?} is not an identifier: use a letter, then letters, digits or '_' (at most {MAX_NAME_LEN})"
    )]
    BadName {
        /// Position in the list.
        index: usize,
        /// The refused name.
        name: String,
    },
    /// Two fields share a name (ignoring case, since CSV headers and
    /// spreadsheet users would not tell them apart).
    #[error("fields[{index}].name {name:?} is used twice")]
    Duplicate {
        /// Position of the second use.
        index: usize,
        /// The repeated name.
        name: String,
    },
    /// The description is too long.
    #[error("fields[{index}].description is longer than {MAX_DESCRIPTION_CHARS} characters")]
    DescriptionTooLong {
        /// Position in the list.
        index: usize,
    },
}

/// Checks a whole field list: count, names, uniqueness, description length.
pub fn validate_fields(fields: &[Field]) -> Result<(), FieldError> {
    if fields.len() > MAX_FIELDS {
        return Err(FieldError::TooMany(fields.len()));
    }
    let mut seen = std::collections::HashSet::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        if !is_identifier(&field.name) {
            return Err(FieldError::BadName {
                index,
                name: field.name.clone(),
            });
        }
        if !seen.insert(field.name.to_ascii_lowercase()) {
            return Err(FieldError::Duplicate {
                index,
                name: field.name.clone(),
            });
        }
        if field.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(FieldError::DescriptionTooLong { index });
        }
    }
    Ok(())
}

/// A letter, then ASCII letters, digits or `_`; at most 64 bytes. Names that
/// start with `_` are reserved for what the engines add (`_text`, `_confidence`).
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic())
        && name.len() <= MAX_NAME_LEN
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_normal_list() {
        let fields = vec![
            Field::new("title", FieldType::Text),
            Field::new("year", FieldType::Integer),
            Field::new("call_number", FieldType::Text),
        ];
        assert_eq!(validate_fields(&fields), Ok(()));
        assert_eq!(validate_fields(&[]), Ok(()));
    }

    #[test]
    fn refuses_names_that_are_not_identifiers() {
        for bad in [
            "",
            "1st",
            "_text",
            "has space",
            "dash-ed",
            "../x",
            "nul\0",
            "é",
            &"a".repeat(65),
        ] {
            let err = validate_fields(&[Field::new(bad, FieldType::Text)]).unwrap_err();
            assert!(
                matches!(err, FieldError::BadName { index: 0, .. }),
                "{bad:?}"
            );
        }
        assert!(is_identifier(&"a".repeat(64)));
    }

    #[test]
    fn refuses_duplicates_ignoring_case() {
        let fields = vec![
            Field::new("title", FieldType::Text),
            Field::new("Title", FieldType::Text),
        ];
        assert_eq!(
            validate_fields(&fields),
            Err(FieldError::Duplicate {
                index: 1,
                name: "Title".into()
            })
        );
    }

    #[test]
    fn limits_count_and_description_length() {
        let many: Vec<_> = (0..101)
            .map(|i| Field::new(&format!("f{i}"), FieldType::Text))
            .collect();
        assert_eq!(validate_fields(&many), Err(FieldError::TooMany(101)));
        assert_eq!(validate_fields(&many[..100]), Ok(()));

        let long = Field::new("a", FieldType::Text).describe(&"é".repeat(1001));
        assert_eq!(
            validate_fields(&[long]),
            Err(FieldError::DescriptionTooLong { index: 0 })
        );
        let ok = Field::new("a", FieldType::Text).describe(&"é".repeat(1000));
        assert_eq!(validate_fields(&[ok]), Ok(()));
    }

    #[test]
    fn json_shape_matches_the_contract() {
        let f: Field = serde_json::from_str(r#"{"name":"year","type":"integer"}"#).unwrap();
        assert_eq!(f, Field::new("year", FieldType::Integer));
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"name":"year","description":"","type":"integer","active":true})
        );
        assert!(serde_json::from_str::<Field>(r#"{"name":"a","type":"color"}"#).is_err());
        assert!(serde_json::from_str::<Field>(r#"{"name":"a","type":"text","x":1}"#).is_err());
    }
}
