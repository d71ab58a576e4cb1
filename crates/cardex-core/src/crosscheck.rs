//! The cross-check (DESIGN §13): is a text value a model gave written on
//! the card at all? The card's own OCR text is the witness. A value that
//! cannot be found in it, even allowing for OCR's usual mistakes, is
//! flagged `not_in_text`: a likely invention.
//!
//! OCR text is noisy, so both sides are first *folded* to a form in which
//! the usual differences vanish:
//! - accents and ligatures are transliterated (`Zürich` → `zurich`,
//!   `Straße` → `strasse`), so lost accents do not count;
//! - everything but letters and digits is dropped, so letter-spaced words
//!   (`B a s e l`), words broken across lines (`Ba-\nsel`), punctuation
//!   and line breaks do not count either;
//! - shapes OCR confuses are made one: `rn` and `m`, `vv` and `w`, `cl`
//!   and `d`, `0` and `o`, `1`, `i`, `l` and `|`, `5` and `s`.
//!
//! What is left may still differ by a misread letter here and there, so a
//! value is searched with Sellers' approximate substring matching: found
//! where some stretch of the text is within a few edits of it (one per
//! five characters). A value of several words is found as a whole, or
//! when each of its words is found on its own (a model may give
//! `Olga Petrov` for a card that reads `Petrov, Olga`).

use serde_json::{Map, Value};

use crate::field::{Field, FieldType};
use crate::flag::{Flag, FlagCode};

/// Below this OCR confidence (0–1) a card's own text says too little to
/// check a model against: handwriting and poor scans come out as guesses,
/// in which every true value would look made up, so such a card's check
/// is skipped and marked instead.
pub const MIN_LEGIBLE: f64 = 0.6;

/// Folded values shorter than this are not judged: a two-letter value
/// turns up by chance in any text.
const MIN_LEN: usize = 3;

/// Edits allowed per this many characters of a folded value.
const CHARS_PER_EDIT: usize = 5;

/// A card's OCR text, folded once for all its values.
#[derive(Debug, Clone)]
pub struct CardText {
    folded: Vec<u8>,
}

impl CardText {
    /// Folds `text` for searching.
    pub fn new(text: &str) -> Self {
        Self { folded: fold(text) }
    }

    /// Whether `value` occurs in the text, allowing for OCR noise; `None`
    /// when it is too short to tell.
    pub fn contains(&self, value: &str) -> Option<bool> {
        let whole = fold(value);
        if whole.len() < MIN_LEN {
            return None;
        }
        if self.finds(&whole) {
            return Some(true);
        }
        let words: Vec<Vec<u8>> = value
            .split(|c: char| !c.is_alphanumeric())
            .map(fold)
            .filter(|w| w.len() >= MIN_LEN)
            .collect();
        Some(words.len() > 1 && words.iter().all(|w| self.finds(w)))
    }

    fn finds(&self, pattern: &[u8]) -> bool {
        within(pattern, &self.folded, pattern.len() / CHARS_PER_EDIT)
    }
}

/// The `not_in_text` flags of a result: one for each text value (and each
/// list item) of an active field that `text` does not contain.
pub fn not_in_text(fields: &[Field], values: &Map<String, Value>, text: &CardText) -> Vec<Flag> {
    let mut flags = Vec::new();
    for field in fields.iter().filter(|f| f.active) {
        let texts: Vec<&str> = match (field.kind, values.get(&field.name)) {
            (FieldType::Text, Some(Value::String(s))) => vec![s.as_str()],
            (FieldType::List, Some(Value::Array(items))) => {
                items.iter().filter_map(Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        let missing: Vec<&str> = texts
            .into_iter()
            .filter(|t| text.contains(t) == Some(false))
            .collect();
        if let Some(first) = missing.first() {
            let message = if missing.len() == 1 {
                format!("\"{first}\" is not in the card's own text: check it against the image")
            } else {
                format!(
                    "{} of its values (\"{first}\", ...) are not in the card's own text: check them against the image",
                    missing.len()
                )
            };
            flags.push(Flag::on(&field.name, FlagCode::NotInText, message));
        }
    }
    flags
}

/// Folds text as described in the module comment: ASCII, lower case,
/// letters and digits only, OCR's confusable shapes made one.
fn fold(text: &str) -> Vec<u8> {
    let plain = deunicode::deunicode(text).to_ascii_lowercase();
    let mut out: Vec<u8> = Vec::with_capacity(plain.len());
    // Two shapes are joined only within a word: `Herr Nagel` has no `m`.
    let mut in_word = false;
    for b in plain.bytes() {
        let b = match b {
            b'0' => b'o',
            b'1' | b'i' | b'|' => b'l',
            b'5' => b's',
            b if b.is_ascii_alphanumeric() => b,
            _ => {
                in_word = false;
                continue;
            }
        };
        let last = if in_word { out.last() } else { None };
        in_word = true;
        // Two shapes that read as one.
        let joined = match (last, b) {
            (Some(b'r'), b'n') => Some(b'm'),
            (Some(b'v'), b'v') => Some(b'w'),
            (Some(b'c'), b'l') => Some(b'd'),
            _ => None,
        };
        match joined {
            Some(j) => *out.last_mut().expect("a last byte was matched") = j,
            None => out.push(b),
        }
    }
    out
}

/// Whether some substring of `text` is at most `k` edits (insertions,
/// deletions, substitutions) from `pattern`: Sellers' algorithm, one
/// column of the edit-distance table at a time, O(pattern × text).
fn within(pattern: &[u8], text: &[u8], k: usize) -> bool {
    let m = pattern.len();
    if m == 0 {
        return true;
    }
    // column[i]: the fewest edits that turn pattern[..i] into a substring
    // of the text ending at the present position.
    let mut column: Vec<usize> = (0..=m).collect();
    for &t in text {
        let mut diagonal = column[0]; // row 0 stays 0: a match may start anywhere
        for i in 1..=m {
            let above = column[i];
            let cost = usize::from(pattern[i - 1] != t);
            column[i] = (diagonal + cost).min(above + 1).min(column[i - 1] + 1);
            diagonal = above;
        }
        if column[m] <= k {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(value: &str, text: &str) -> Option<bool> {
        CardText::new(text).contains(value)
    }

    #[test]
    fn finds_a_value_written_plainly() {
        assert_eq!(
            found("Basel", "Gedruckt in Basel bei Froben, 1521."),
            Some(true)
        );
        assert_eq!(
            found("Zurich", "Gedruckt in Basel bei Froben, 1521."),
            Some(false)
        );
    }

    #[test]
    fn tolerates_ocr_noise() {
        // rn read for m, 0 for O, a lost accent, a broken line, letter spacing
        assert_eq!(found("Hermann", "Herrnann, Otto"), Some(true));
        assert_eq!(found("Otto", "0tto Hermann"), Some(true));
        assert_eq!(found("Zürich", "Verlag Zurich 1931"), Some(true));
        assert_eq!(found("Geschichte", "Ge-\nschichte der Stadt"), Some(true));
        assert_eq!(found("Basel", "B a s e l"), Some(true));
        assert_eq!(found("Illustrationen", "lllustrati0nen"), Some(true));
        // one misread letter in ten
        assert_eq!(found("Froschauer", "Frosehauer"), Some(true));
    }

    #[test]
    fn joins_shapes_only_within_a_word() {
        // `…c\nL…` and `…r N…` must not fold into a d or an m.
        assert_eq!(found("Marc", "Lewis, Marc\nLondon"), Some(true));
        assert_eq!(found("Herr", "Herr Nagel"), Some(true));
        assert_eq!(found("Eric", "Eric Ingram"), Some(true));
        assert_eq!(found("Hermann", "Herrnann"), Some(true));
    }

    #[test]
    fn finds_words_in_another_order() {
        assert_eq!(found("Olga Petrov", "Petrov, Olga\nVoyage"), Some(true));
        assert_eq!(found("Olga Abbott", "Petrov, Olga\nVoyage"), Some(false));
    }

    #[test]
    fn does_not_judge_what_is_too_short() {
        assert_eq!(found("ed", "anything at all"), None);
        assert_eq!(found("  ", "anything at all"), None);
    }

    #[test]
    fn an_invented_value_of_the_same_kind_is_not_found() {
        let card = "KA7307 .E93\nPetrov, Olga\nVoyage journal northern memory modern. 1857";
        assert_eq!(found("KR35 .K70", card), Some(false));
        assert_eq!(found("City letters river memory", card), Some(false));
        assert_eq!(found("KA7307 .E93", card), Some(true));
    }

    #[test]
    fn flags_text_values_and_list_items_only() {
        let fields: Vec<Field> = serde_json::from_value(serde_json::json!([
            {"name": "author", "type": "text"},
            {"name": "year", "type": "integer"},
            {"name": "subjects", "type": "list"},
            {"name": "title", "type": "text", "active": false}
        ]))
        .unwrap();
        let values = serde_json::json!({
            "author": "Olga Abbott", "year": 1999,
            "subjects": ["Voyage", "Astronomy"], "title": "Nowhere at all"
        });
        let text = CardText::new("Petrov, Olga\nVoyage journal. 1857");
        let flags = not_in_text(&fields, values.as_object().unwrap(), &text);
        let on: Vec<_> = flags.iter().map(|f| f.field.as_deref().unwrap()).collect();
        assert_eq!(on, ["author", "subjects"]);
        assert!(flags.iter().all(|f| f.code == FlagCode::NotInText));
        assert!(
            flags[1].message.contains("Astronomy"),
            "{}",
            flags[1].message
        );
    }

    #[test]
    fn sellers_counts_edits() {
        assert!(within(b"abc", b"xxabcxx", 0));
        assert!(!within(b"abd", b"xxabcxx", 0));
        assert!(within(b"abd", b"xxabcxx", 1));
        assert!(within(b"abcd", b"xxabdxx", 1)); // one deletion
        assert!(!within(b"abcdef", b"xxazzzfx", 2));
    }
}
