//! Reading a model's answer: find the JSON object in the text (tolerating
//! Markdown fences and prose around it), coerce values to the field types
//! where the meaning is unambiguous (`"1952"` → 1952 for an integer), fill
//! absent fields with null, drop unknown keys, and validate the result
//! against the prompt's JSON Schema.

use cardex_core::{Field, Prompt, build_prompt};
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

/// A prompt with its schema compiled once, for validating many answers.
#[derive(Debug)]
pub struct CompiledPrompt {
    /// What is sent.
    pub prompt: Prompt,
    /// The active fields, in order (engines that read labels use their
    /// names and descriptions).
    pub fields: Vec<Field>,
    /// Field name → its JSON type (the first non-null entry of `type`).
    types: Vec<(String, String)>,
    validator: jsonschema::Validator,
}

impl CompiledPrompt {
    /// Builds and compiles the prompt for `fields` (only active ones count).
    pub fn new(fields: &[Field]) -> Result<Self, String> {
        let prompt = build_prompt(fields);
        let validator =
            jsonschema::validator_for(&prompt.json_schema).map_err(|e| e.to_string())?;
        let types = prompt.json_schema["properties"]
            .as_object()
            .map(|props| {
                props
                    .iter()
                    .map(|(name, schema)| (name.clone(), primary_type(schema)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            prompt,
            fields: fields.iter().filter(|f| f.active).cloned().collect(),
            types,
            validator,
        })
    }

    /// Turns answer text into the validated field object.
    pub fn read_answer(&self, text: &str) -> Result<Map<String, Value>, AnswerError> {
        let Value::Object(found) = find_json_object(text).ok_or(AnswerError::NoJson)? else {
            return Err(AnswerError::NoJson);
        };
        self.read_object(found)
    }

    /// Coerces and validates an object of field values: absent fields
    /// become null, unknown keys are dropped.
    pub fn read_object(
        &self,
        mut found: Map<String, Value>,
    ) -> Result<Map<String, Value>, AnswerError> {
        let mut out = Map::with_capacity(self.types.len());
        for (name, ty) in &self.types {
            let value = found.remove(name).unwrap_or(Value::Null);
            out.insert(name.clone(), coerce(value, ty));
        }
        let value = Value::Object(out);
        if let Some(err) = self.validator.iter_errors(&value).next() {
            return Err(AnswerError::Invalid(err.to_string()));
        }
        match value {
            Value::Object(map) => Ok(map),
            _ => unreachable!("built as an object above"),
        }
    }
}

fn primary_type(schema: &Value) -> String {
    match &schema["type"] {
        Value::String(s) => s.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ => "string".to_owned(),
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

/// Converts `value` to the JSON type `ty` when the meaning is unambiguous;
/// otherwise returns it unchanged for the validator to judge.
fn coerce(value: Value, ty: &str) -> Value {
    match value {
        Value::String(s) if s.trim().is_empty() || is_null_word(&s) => Value::Null,
        Value::String(s) => match ty {
            "integer" => parse_number(&s)
                .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
                .map_or(Value::String(s), |n| Value::from(n as i64)),
            "number" => parse_number(&s)
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::String(s), Value::Number),
            "boolean" => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "1" => Value::Bool(true),
                "false" | "no" | "n" | "0" => Value::Bool(false),
                _ => Value::String(s),
            },
            "array" => Value::Array(vec![Value::String(s.trim().to_owned())]),
            _ => Value::String(s),
        },
        Value::Number(n) => match ty {
            "integer" => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                _ => Value::Number(n),
            },
            "string" => Value::String(n.to_string()),
            "array" => Value::Array(vec![Value::String(n.to_string())]),
            _ => Value::Number(n),
        },
        Value::Bool(b) if ty == "string" => Value::String(b.to_string()),
        Value::Array(items) if ty == "array" => Value::Array(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(|v| match v {
                    Value::String(s) => Value::String(s),
                    other => Value::String(other.to_string()),
                })
                .collect(),
        ),
        Value::Array(items) if ty == "string" && items.iter().all(Value::is_string) => {
            Value::String(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        }
        other => other,
    }
}

fn is_null_word(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "null" | "none" | "n/a"
    )
}

/// A number written the way people write them: `1,952`, ` 3.5 `, `1 000`.
fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' '))
        .collect();
    cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardex_core::FieldType;
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
            .read_answer(r#"{"title": "Moby Dick", "year": "1,851", "price": "3.50", "signed": "yes", "subjects": "Whales", "extra": 1}"#)
            .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"title": "Moby Dick", "year": 1851, "price": 3.5, "signed": true, "subjects": ["Whales"], "date": null})
        );
        let got = c
            .read_answer(r#"{"title": 1984, "year": 1952.0, "price": 2, "signed": false, "subjects": ["a", 2, null], "date": ""}"#)
            .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"title": "1984", "year": 1952, "price": 2, "signed": false, "subjects": ["a", "2"], "date": null})
        );
    }

    #[test]
    fn refuses_what_cannot_be_coerced() {
        let c = compiled();
        assert!(matches!(
            c.read_answer(r#"{"year": "around 1950"}"#),
            Err(AnswerError::Invalid(_))
        ));
        assert!(matches!(
            c.read_answer(r#"{"signed": "maybe"}"#),
            Err(AnswerError::Invalid(_))
        ));
        assert!(matches!(
            c.read_answer(r#"{"title": {"nested": true}}"#),
            Err(AnswerError::Invalid(_))
        ));
        assert_eq!(c.read_answer("no json here"), Err(AnswerError::NoJson));
    }
}
