//! Prompt generation: the system text, user text and JSON Schema that are
//! sent to a model for one card, built from the batch's active fields.
//!
//! The schema keeps to the subset that OpenAI strict mode, vLLM guided
//! decoding (xgrammar / outlines) and Ollama's `format` all accept: one flat
//! object, every property required, `additionalProperties: false`,
//! "nullable" through type arrays, no `format`, `pattern` or `$ref`.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::field::{Field, FieldType};

/// The name given to the schema in `response_format.json_schema.name`.
pub const SCHEMA_NAME: &str = "card_fields";

/// Everything a client may inspect before a batch starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    /// The system message.
    pub system: String,
    /// The text part of the user message (the image is sent beside it).
    pub user: String,
    /// The JSON Schema the answer must match.
    pub json_schema: Value,
}

const SYSTEM: &str = "\
You extract structured data from a photo or scan of one card: a library catalog card, \
an index card, a specimen label, a business card or similar.
Read the whole card. Copy values exactly as written (spelling, capitalisation, punctuation) \
unless a field's description asks for something else.
If a value is not on the card or cannot be read, use null. Never guess or invent values.
Answer with one JSON object that matches the given JSON Schema, and nothing else.";

impl Prompt {
    /// The user text for a card of `images` images: a two-sided card's
    /// says which image is which side ([`crate::sides::TWO_SIDED_NOTE`]).
    pub fn user_for(&self, images: usize) -> std::borrow::Cow<'_, str> {
        if images < 2 {
            return self.user.as_str().into();
        }
        format!("{}\n\n{}", crate::sides::TWO_SIDED_NOTE, self.user).into()
    }
}

/// Builds the prompt for the active fields of `fields`, in their order.
pub fn build_prompt(fields: &[Field]) -> Prompt {
    let active: Vec<&Field> = fields.iter().filter(|f| f.active).collect();
    Prompt {
        system: SYSTEM.to_owned(),
        user: user_text(&active),
        json_schema: json_schema(&active),
    }
}

fn user_text(fields: &[&Field]) -> String {
    let mut text = String::from("Extract these fields from the card:\n");
    for f in fields {
        text.push_str(&format!("- {} ({})", f.name, type_phrase(f.kind)));
        let description = f.description.trim();
        if !description.is_empty() {
            text.push_str(": ");
            text.push_str(description);
        }
        text.push('\n');
    }
    let mut rules = Vec::new();
    let has = |k: FieldType| fields.iter().any(|f| f.kind == k);
    if has(FieldType::Date) {
        rules.push(
            "Write dates as ISO 8601: YYYY-MM-DD, or YYYY-MM or YYYY when the card gives no more.",
        );
    }
    if has(FieldType::Number) || has(FieldType::Integer) {
        rules.push("Write numbers as plain JSON numbers, without units or thousands separators.");
    }
    if has(FieldType::List) {
        rules.push("Write lists as JSON arrays of strings, one entry per item on the card.");
    }
    if !rules.is_empty() {
        text.push('\n');
        text.push_str(&rules.join("\n"));
        text.push('\n');
    }
    text.push_str("\nReturn only the JSON object, with every field present (null when absent).");
    text
}

fn type_phrase(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text => "text",
        FieldType::Number => "number",
        FieldType::Integer => "whole number",
        FieldType::Date => "date, ISO 8601",
        FieldType::Boolean => "true or false",
        FieldType::List => "list of text",
    }
}

fn json_schema(fields: &[&Field]) -> Value {
    let mut properties = Map::new();
    for f in fields {
        properties.insert(f.name.clone(), property_schema(f));
    }
    let required: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn property_schema(f: &Field) -> Value {
    let mut schema = match f.kind {
        FieldType::Text | FieldType::Date => json!({"type": ["string", "null"]}),
        FieldType::Number => json!({"type": ["number", "null"]}),
        FieldType::Integer => json!({"type": ["integer", "null"]}),
        FieldType::Boolean => json!({"type": ["boolean", "null"]}),
        FieldType::List => json!({"type": ["array", "null"], "items": {"type": "string"}}),
    };
    let mut description = f.description.trim().to_owned();
    if f.kind == FieldType::Date {
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str("(ISO 8601 date: YYYY-MM-DD, YYYY-MM or YYYY)");
    }
    if !description.is_empty() {
        schema["description"] = Value::String(description);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog_fields() -> Vec<Field> {
        vec![
            Field::new("call_number", FieldType::Text).describe("Library call number, top left"),
            Field::new("author", FieldType::Text).describe("The person who wrote the book"),
            Field::new("year", FieldType::Integer),
            Field::new("subjects", FieldType::List).describe("Subject headings"),
            Field {
                active: false,
                ..Field::new("notes", FieldType::Text)
            },
        ]
    }

    #[test]
    fn schema_is_strict_and_follows_field_order() {
        let p = build_prompt(&catalog_fields());
        assert_eq!(
            p.json_schema,
            json!({
                "type": "object",
                "properties": {
                    "call_number": {"type": ["string", "null"], "description": "Library call number, top left"},
                    "author": {"type": ["string", "null"], "description": "The person who wrote the book"},
                    "year": {"type": ["integer", "null"]},
                    "subjects": {"type": ["array", "null"], "items": {"type": "string"}, "description": "Subject headings"},
                },
                "required": ["call_number", "author", "year", "subjects"],
                "additionalProperties": false,
            })
        );
        let keys: Vec<_> = p.json_schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["call_number", "author", "year", "subjects"]);
    }

    #[test]
    fn inactive_fields_are_left_out_everywhere() {
        let p = build_prompt(&catalog_fields());
        assert!(!p.user.contains("notes"));
        assert!(p.json_schema["properties"].get("notes").is_none());
    }

    #[test]
    fn user_text_lists_fields_with_descriptions_and_only_relevant_rules() {
        let p = build_prompt(&catalog_fields());
        assert!(
            p.user
                .contains("- call_number (text): Library call number, top left\n")
        );
        assert!(p.user.contains("- year (whole number)\n"));
        assert!(p.user.contains("plain JSON numbers"));
        assert!(p.user.contains("JSON arrays of strings"));
        assert!(!p.user.contains("ISO 8601"), "no date field, no date rule");
    }

    #[test]
    fn every_type_maps_to_a_nullable_schema() {
        let fields: Vec<Field> = [
            ("t", FieldType::Text),
            ("n", FieldType::Number),
            ("i", FieldType::Integer),
            ("d", FieldType::Date),
            ("b", FieldType::Boolean),
            ("l", FieldType::List),
        ]
        .into_iter()
        .map(|(n, k)| Field::new(n, k))
        .collect();
        let p = build_prompt(&fields);
        let props = &p.json_schema["properties"];
        for (name, ty) in [
            ("t", "string"),
            ("n", "number"),
            ("i", "integer"),
            ("d", "string"),
            ("b", "boolean"),
            ("l", "array"),
        ] {
            assert_eq!(props[name]["type"], json!([ty, "null"]), "{name}");
        }
        assert_eq!(
            props["d"]["description"],
            "(ISO 8601 date: YYYY-MM-DD, YYYY-MM or YYYY)"
        );
        assert!(p.user.contains("Write dates as ISO 8601"));
    }

    #[test]
    fn schema_uses_only_the_portable_subset() {
        fn walk(v: &Value) {
            if let Some(obj) = v.as_object() {
                for (k, child) in obj {
                    assert!(
                        ![
                            "format",
                            "pattern",
                            "$ref",
                            "oneOf",
                            "anyOf",
                            "allOf",
                            "minLength"
                        ]
                        .contains(&k.as_str()),
                        "non-portable keyword {k}"
                    );
                    walk(child);
                }
            } else if let Some(arr) = v.as_array() {
                arr.iter().for_each(walk);
            }
        }
        walk(&build_prompt(&catalog_fields()).json_schema);
    }

    #[test]
    fn no_fields_gives_an_empty_strict_object() {
        let p = build_prompt(&[]);
        assert_eq!(p.json_schema["required"], json!([]));
        assert_eq!(p.json_schema["additionalProperties"], json!(false));
    }
}
