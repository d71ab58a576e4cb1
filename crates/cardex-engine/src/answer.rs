//! Reading a model's answer: find the JSON object in the text (tolerating
//! Markdown fences and prose around it), read values as their field types
//! where the meaning is unambiguous (`"1952"` → 1952 for an integer,
//! `"3,50"` → 3.5, `"12 March 1931"` → `1931-03-12`), fill absent fields
//! with null, drop unknown keys, and validate the result against the
//! prompt's JSON Schema. A value that cannot be read as its type is kept
//! as written and flagged `invalid_value`, not guessed at and not retried:
//! a person decides.

use cardex_core::values::{NumberReading, read_date, read_number};
use cardex_core::{Field, FieldType, Flag, FlagCode, Prompt, build_prompt};
use serde_json::{Map, Value};

/// Why an answer could not be used. Each counts as a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No JSON object could be found in the text.
    #[error("the answer holds no JSON object")]
    NoJson,
    /// A JSON object was found but does not match the schema.
    #[error("the answer does not match the schema: {0}")]
    Invalid(String),
}

/// An answer read: the values by field, and the flags on them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    /// Field name → value (null where the card has none).
    pub values: Map<String, Value>,
    /// Values that could not be read as their type, kept as written.
    pub flags: Vec<Flag>,
}

/// A prompt with its schema compiled once, for validating many answers.
#[derive(Debug)]
pub struct CompiledPrompt {
    /// What is sent.
    pub prompt: Prompt,
    /// The active fields, in order (engines that read labels use their
    /// names and descriptions).
    pub fields: Vec<Field>,
    validator: jsonschema::Validator,
}

impl CompiledPrompt {
    /// Builds and compiles the prompt for `fields` (only active ones count).
    pub fn new(fields: &[Field]) -> Result<Self, String> {
        let prompt = build_prompt(fields);
        let validator =
            jsonschema::validator_for(&prompt.json_schema).map_err(|e| e.to_string())?;
        Ok(Self {
            prompt,
            fields: fields.iter().filter(|f| f.active).cloned().collect(),
            validator,
        })
    }

    /// Turns answer text into the validated, flagged field values.
    pub fn read_answer(&self, text: &str) -> Result<Answer, AnswerError> {
        let Value::Object(found) = find_json_object(text).ok_or(AnswerError::NoJson)? else {
            return Err(AnswerError::NoJson);
        };
        self.read_values(found)
    }

    /// Reads an object of field values: absent fields become null, unknown
    /// keys are dropped, values are read as their types; what cannot be
    /// is kept as written, flagged, and left out of the schema check.
    pub fn read_values(&self, mut found: Map<String, Value>) -> Result<Answer, AnswerError> {
        let mut answer = Answer::default();
        let mut checked = Map::with_capacity(self.fields.len());
        for field in &self.fields {
            let value = found.remove(&field.name).unwrap_or(Value::Null);
            match read_as(value, field.kind) {
                Ok(v) => {
                    checked.insert(field.name.clone(), v.clone());
                    answer.values.insert(field.name.clone(), v);
                }
                Err((as_written, why)) => {
                    checked.insert(field.name.clone(), Value::Null);
                    answer.values.insert(field.name.clone(), as_written);
                    answer
                        .flags
                        .push(Flag::on(&field.name, FlagCode::InvalidValue, why));
                }
            }
        }
        if let Some(err) = self.validator.iter_errors(&Value::Object(checked)).next() {
            return Err(AnswerError::Invalid(err.to_string()));
        }
        Ok(answer)
    }
}

/// The first JSON object in `text`: the whole text, a fenced block, or the
/// outermost `{...}` inside prose.
pub fn find_json_object(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str(trimmed) {
        return Some(v);
    }
    // Fenced block: ```json ... ``` or ``` ... ```
    let mut rest = trimmed;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let body = &after[body_start..];
        let Some(end) = body.find("```") else { break };
        if let Ok(v @ Value::Object(_)) = serde_json::from_str(body[..end].trim()) {
            return Some(v);
        }
        rest = &body[end + 3..];
    }
    // Prose around an object: try each `{` with a streaming parser, which
    // stops at the end of the first complete value.
    for (i, _) in trimmed.match_indices('{') {
        let mut stream = serde_json::Deserializer::from_str(&trimmed[i..]).into_iter::<Value>();
        if let Some(Ok(v @ Value::Object(_))) = stream.next() {
            return Some(v);
        }
    }
    None
}

/// `value` read as a `kind` value: the value, or the value as written
/// with the reason it does not fit.
fn read_as(value: Value, kind: FieldType) -> Result<Value, (Value, String)> {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let invalid = |v: Value, why: String| Err((Value::String(as_text(&v)), why));
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s.trim().is_empty() || is_null_word(&s) => Ok(Value::Null),
        value => match kind {
            FieldType::Text => match value {
                Value::String(s) => Ok(Value::String(s)),
                Value::Number(_) | Value::Bool(_) => Ok(Value::String(value.to_string())),
                Value::Array(items) if items.iter().all(Value::is_string) => Ok(Value::String(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; "),
                )),
                other => invalid(other, "expected text".into()),
            },
            FieldType::Integer | FieldType::Number => {
                let whole = kind == FieldType::Integer;
                let reading = match &value {
                    Value::Number(n) => n
                        .as_f64()
                        .map_or(NumberReading::NotANumber, NumberReading::Value),
                    Value::String(s) => read_number(s, whole),
                    _ => NumberReading::NotANumber,
                };
                match reading {
                    NumberReading::Value(n) if whole && n.fract() == 0.0 && n.abs() < 9.0e15 => {
                        Ok(Value::from(n as i64))
                    }
                    NumberReading::Value(n) if whole => {
                        invalid(value, format!("{n} is not a whole number"))
                    }
                    NumberReading::Value(n) => serde_json::Number::from_f64(n)
                        .map(Value::Number)
                        .ok_or_else(|| {
                            (Value::String(as_text(&value)), "not a finite number".into())
                        }),
                    NumberReading::Ambiguous => invalid(
                        value,
                        "could be read two ways (a thousands separator or a decimal comma)".into(),
                    ),
                    NumberReading::NotANumber => invalid(value, "not a number".into()),
                }
            }
            FieldType::Date => match &value {
                Value::String(s) => match read_date(s) {
                    Some(iso) => Ok(Value::String(iso)),
                    None => invalid(value, "not a date that reads one way (YYYY-MM-DD)".into()),
                },
                Value::Number(n) => match n.as_u64().and_then(|y| read_date(&y.to_string())) {
                    Some(iso) => Ok(Value::String(iso)),
                    None => invalid(value, "not a year".into()),
                },
                _ => invalid(value, "not a date".into()),
            },
            FieldType::Boolean => match &value {
                Value::Bool(b) => Ok(Value::Bool(*b)),
                Value::String(s) => match s.trim().to_lowercase().as_str() {
                    "true" | "yes" | "y" | "1" | "ja" | "oui" => Ok(Value::Bool(true)),
                    "false" | "no" | "n" | "0" | "nein" | "non" => Ok(Value::Bool(false)),
                    _ => invalid(value, "not yes or no".into()),
                },
                Value::Number(n) if n.as_f64() == Some(1.0) => Ok(Value::Bool(true)),
                Value::Number(n) if n.as_f64() == Some(0.0) => Ok(Value::Bool(false)),
                _ => invalid(value, "not yes or no".into()),
            },
            FieldType::List => match value {
                Value::Array(items) => {
                    let items: Vec<Value> = items
                        .into_iter()
                        .filter(|v| !v.is_null())
                        .map(|v| Value::String(as_text(&v)))
                        .collect();
                    Ok(Value::Array(items))
                }
                other => Ok(Value::Array(vec![Value::String(
                    as_text(&other).trim().to_owned(),
                )])),
            },
        },
    }
}

fn is_null_word(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "null" | "none" | "n/a"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn compiled() -> CompiledPrompt {
        CompiledPrompt::new(&[
            Field::new("title", FieldType::Text),
            Field::new("year", FieldType::Integer),
            Field::new("price", FieldType::Number),
            Field::new("signed", FieldType::Boolean),
            Field::new("subjects", FieldType::List),
            Field::new("date", FieldType::Date),
        ])
        .unwrap()
    }

    #[test]
    fn finds_json_in_fences_and_prose() {
        let obj = json!({"a": 1});
        assert_eq!(find_json_object(r#"{"a": 1}"#), Some(obj.clone()));
        assert_eq!(
            find_json_object("```json\n{\"a\": 1}\n```"),
            Some(obj.clone())
        );
        assert_eq!(
            find_json_object("Sure! Here it is:\n```\n{\"a\": 1}\n```\nAnything else?"),
            Some(obj.clone())
        );
        assert_eq!(
            find_json_object("The card says {\"a\": 1} — hope that helps {x}"),
            Some(obj)
        );
        assert_eq!(find_json_object("I cannot read this card."), None);
        assert_eq!(find_json_object("[1, 2]"), None);
        assert_eq!(find_json_object("{\"a\": "), None);
    }

    #[test]
    fn coerces_where_unambiguous_and_nulls_the_absent() {
        let c = compiled();
        let got = c
            .read_answer(r#"{"title": "Moby Dick", "year": "1,851", "price": "3,50", "signed": "yes", "subjects": "Whales", "date": "12 March 1931", "extra": 1}"#)
            .unwrap();
        assert_eq!(
            Value::Object(got.values),
            json!({"title": "Moby Dick", "year": 1851, "price": 3.5, "signed": true, "subjects": ["Whales"], "date": "1931-03-12"})
        );
        assert!(got.flags.is_empty());
        let got = c
            .read_answer(r#"{"title": 1984, "year": 1952.0, "price": "1.234,5", "signed": false, "subjects": ["a", 2, null], "date": "12.3.1931"}"#)
            .unwrap();
        assert_eq!(
            Value::Object(got.values),
            json!({"title": "1984", "year": 1952, "price": 1234.5, "signed": false, "subjects": ["a", "2"], "date": "1931-03-12"})
        );
    }

    #[test]
    fn keeps_what_cannot_be_read_as_written_and_flags_it() {
        let c = compiled();
        let got = c
            .read_answer(r#"{"title": "T", "year": "around 1950", "price": "1,234", "signed": "maybe", "date": "3/4/1931"}"#)
            .unwrap();
        assert_eq!(got.values["year"], "around 1950");
        assert_eq!(got.values["price"], "1,234");
        assert_eq!(got.values["signed"], "maybe");
        assert_eq!(got.values["date"], "3/4/1931");
        assert_eq!(got.values["title"], "T");
        let flagged: Vec<(&str, FlagCode)> = got
            .flags
            .iter()
            .map(|f| (f.field.as_deref().unwrap(), f.code))
            .collect();
        assert_eq!(
            flagged,
            [
                ("year", FlagCode::InvalidValue),
                ("price", FlagCode::InvalidValue),
                ("signed", FlagCode::InvalidValue),
                ("date", FlagCode::InvalidValue),
            ]
        );
        assert!(
            got.flags[1].message.contains("two ways"),
            "{:?}",
            got.flags[1]
        );
        let got = c.read_answer(r#"{"title": {"nested": true}}"#).unwrap();
        assert_eq!(got.values["title"], r#"{"nested":true}"#);
        assert_eq!(got.flags[0].code, FlagCode::InvalidValue);
        assert_eq!(c.read_answer("no json here"), Err(AnswerError::NoJson));
    }
}
