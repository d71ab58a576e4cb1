//! How sure a model was of each value, from the token log-probabilities
//! OpenAI-compatible servers return with `logprobs: true` (vLLM,
//! llama.cpp's server and OpenAI put them in `choices[0].logprobs.content`,
//! one entry per generated token).
//!
//! A field's confidence is the probability of the least likely token that
//! spells its value — the tokens overlapping the value's characters in the
//! answer, quotes and the key left out. The minimum, not the mean, because
//! one unsure token is enough to make a value wrong: a shelfmark with one
//! guessed digit is as wrong as a guessed shelfmark, and a mean over a long
//! title would hide it. A field the model answered `null`, or whose tokens
//! cannot be lined up with the answer, has no confidence (null).

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Field name → confidence 0..1 (or null), for `names`, from the answer
/// text `content` and the `logprobs.content` token list that produced it.
pub fn from_logprobs(content: &str, tokens: &Value, names: &[&str]) -> Map<String, Value> {
    let mut out: Map<String, Value> = names
        .iter()
        .map(|n| ((*n).to_owned(), Value::Null))
        .collect();
    let Some(tokens) = tokens.as_array() else {
        return out;
    };
    // Each token's byte range in the answer; they must spell it exactly.
    let mut ranges = Vec::with_capacity(tokens.len());
    let mut spelled = String::with_capacity(content.len());
    for t in tokens {
        let (Some(text), Some(logprob)) = (t["token"].as_str(), t["logprob"].as_f64()) else {
            return out;
        };
        let start = spelled.len();
        spelled.push_str(text);
        ranges.push((start, spelled.len(), logprob));
    }
    if spelled != content {
        return out;
    }
    for (name, (start, end)) in value_spans(content, names) {
        let least = ranges
            .iter()
            .filter(|(s, e, _)| *s < end && *e > start)
            .map(|(_, _, lp)| lp.exp().clamp(0.0, 1.0))
            .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.min(p))));
        if let Some(p) = least {
            out.insert(name, Value::from((p * 1000.0).round() / 1000.0));
        }
    }
    out
}

/// Where each named field's value is written in a JSON answer: the byte
/// range of its characters (inside the quotes for a string). Fields
/// answered `null`, or not found, are left out.
fn value_spans(content: &str, names: &[&str]) -> HashMap<String, (usize, usize)> {
    let bytes = content.as_bytes();
    let mut out = HashMap::new();
    for name in names {
        let key = format!("\"{name}\"");
        let mut from = 0;
        while let Some(at) = content[from..].find(&key) {
            let at = from + at;
            let mut i = at + key.len();
            from = i;
            if at > 0 && bytes[at - 1] == b'\\' {
                continue; // an escaped quote inside a string value
            }
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) != Some(&b':') {
                continue; // the name written inside a value, not a key
            }
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if let Some(span) = value_at(bytes, i) {
                out.insert((*name).to_owned(), span);
            }
            break;
        }
    }
    out
}

/// The span of the JSON value starting at `i`: a string's characters, a
/// number or `true`/`false`, or a whole array; `None` for `null`.
fn value_at(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    match bytes.get(i)? {
        b'"' => {
            let mut j = i + 1;
            while j < bytes.len() {
                match bytes[j] {
                    b'\\' => j += 2,
                    b'"' => return (j > i + 1).then_some((i + 1, j)),
                    _ => j += 1,
                }
            }
            None
        }
        b'[' => {
            let (mut depth, mut j, mut in_string) = (0usize, i, false);
            while j < bytes.len() {
                match (bytes[j], in_string) {
                    (b'\\', true) => j += 1,
                    (b'"', _) => in_string = !in_string,
                    (b'[', false) => depth += 1,
                    (b']', false) => {
                        depth -= 1;
                        if depth == 0 {
                            return Some((i, j + 1));
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        b'n' => None,
        _ => {
            let end = bytes[i..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .map_or(bytes.len(), |n| i + n);
            (end > i).then_some((i, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Tokens of `parts`, each with its probability.
    fn tokens(parts: &[(&str, f64)]) -> Value {
        Value::Array(
            parts
                .iter()
                .map(|(t, p)| json!({"token": t, "logprob": p.ln()}))
                .collect(),
        )
    }

    #[test]
    fn the_least_likely_token_of_each_value_is_its_confidence() {
        let content = r#"{"title": "Moby Dick", "year": 1851, "notes": null}"#;
        let t = tokens(&[
            (r#"{""#, 0.99),
            ("title", 0.99),
            (r#"": ""#, 0.99),
            ("Moby", 0.9),
            (" Dick", 0.7),
            (r#"", ""#, 0.99),
            ("year", 0.99),
            (r#"": "#, 0.99),
            ("18", 0.95),
            ("51", 0.4),
            (r#", ""#, 0.99),
            ("notes", 0.99),
            (r#"": "#, 0.99),
            ("null", 0.2),
            ("}", 0.99),
        ]);
        let c = from_logprobs(content, &t, &["title", "year", "notes", "absent"]);
        assert_eq!(c["title"], json!(0.7));
        assert_eq!(c["year"], json!(0.4));
        assert_eq!(c["notes"], Value::Null, "no value, no confidence");
        assert_eq!(c["absent"], Value::Null);
    }

    #[test]
    fn tokens_that_do_not_spell_the_answer_give_no_confidence() {
        let content = r#"{"title": "A"}"#;
        let t = tokens(&[(r#"{"title": "B"}"#, 0.9)]);
        assert_eq!(from_logprobs(content, &t, &["title"])["title"], Value::Null);
        assert_eq!(
            from_logprobs(content, &Value::Null, &["title"])["title"],
            Value::Null
        );
    }

    #[test]
    fn values_are_found_by_their_keys_only() {
        let content = r#"{"notes": "see \"title\": here", "title": ["a", "b]"], "n": -2.5}"#;
        let spans = value_spans(content, &["title", "notes", "n"]);
        assert_eq!(
            &content[spans["title"].0..spans["title"].1],
            r#"["a", "b]"]"#
        );
        assert_eq!(
            &content[spans["notes"].0..spans["notes"].1],
            r#"see \"title\": here"#
        );
        assert_eq!(&content[spans["n"].0..spans["n"].1], "-2.5");
    }
}
