//! Scoring read values against a corrected transcription, field by field,
//! as the dev-set test and `make bench` report them: author by its name
//! words (any order, case and accents aside), title by similarity after
//! normalising, year exactly, place after normalising, pages by their
//! digits, shelfmark by its letters and digits.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::labels::normalize;
use crate::vocabulary::{edit_distance, fold};

/// The fields a catalog card is scored on.
pub const CATALOG_FIELDS: &[&str] = &["author", "title", "year", "place", "pages", "shelfmark"];

/// Least similarity at which a title counts as right.
pub const TITLE_SIMILARITY: f64 = 0.85;

/// A value as text: strings as they are, numbers written out, null and
/// empty strings as `None`.
pub fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// 1 − edit distance / longer length, of the normalised texts.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalize(a), normalize(b));
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - edit_distance(&a, &b) as f64 / longest as f64
}

/// Name words in order, compared without case or accents (capitals on
/// cards often drop them: `VAYSSIERE` for Vayssière).
fn sorted_words(s: &str) -> Vec<String> {
    let mut w: Vec<String> = fold(&s.replace(['(', ')', '[', ']'], ""))
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    w.sort();
    w
}

fn kept(s: &str, keep: fn(&char) -> bool) -> String {
    s.chars()
        .filter(keep)
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `got` is right for `want` in the field `name`: the rule of
/// that field, or equality after [`normalize`] for any other.
pub fn is_right(name: &str, want: &str, got: &str) -> bool {
    match name {
        "author" => sorted_words(want) == sorted_words(got),
        "title" => similarity(want, got) >= TITLE_SIMILARITY,
        "year" => want.trim() == got.trim(),
        "pages" => kept(want, char::is_ascii_digit) == kept(got, char::is_ascii_digit),
        "shelfmark" => kept(want, |c| c.is_alphanumeric()) == kept(got, |c| c.is_alphanumeric()),
        _ => normalize(want) == normalize(got),
    }
}

/// Right and scored counts per field over many cards. A field counts on a
/// card when the transcription or the reading has a value there, so a
/// value invented where the card has none is wrong, and agreeing that
/// there is none is not counted.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Field → (right, scored).
    pub fields: BTreeMap<String, (u32, u32)>,
}

impl Tally {
    /// Scores one card's reading against its transcription, on `names`.
    /// Returns the fields it got wrong, with both values.
    pub fn add(
        &mut self,
        names: &[&str],
        want: &serde_json::Map<String, Value>,
        got: &serde_json::Map<String, Value>,
    ) -> Vec<String> {
        let mut misses = Vec::new();
        for name in names {
            let w = want.get(*name).and_then(text_of);
            let g = got.get(*name).and_then(text_of);
            let right = match (&w, &g) {
                (None, None) => continue,
                (Some(w), Some(g)) => is_right(name, w, g),
                _ => false,
            };
            let entry = self.fields.entry((*name).to_owned()).or_default();
            entry.0 += u32::from(right);
            entry.1 += 1;
            if !right {
                misses.push(format!("{name}: want {w:?}, got {g:?}"));
            }
        }
        misses
    }

    /// Share right in one field (0 when never scored).
    pub fn rate(&self, name: &str) -> f64 {
        match self.fields.get(name) {
            Some(&(r, n)) if n > 0 => f64::from(r) / f64::from(n),
            _ => 0.0,
        }
    }

    /// Mean of the fields' rates.
    pub fn mean(&self) -> f64 {
        if self.fields.is_empty() {
            return 0.0;
        }
        self.fields.keys().map(|k| self.rate(k)).sum::<f64>() / self.fields.len() as f64
    }

    /// A Markdown table: one row a field, then the mean.
    pub fn table(&self) -> String {
        let mut out = String::from("| field | right | rate |\n|---|---|---|\n");
        for (name, (r, n)) in &self.fields {
            out.push_str(&format!("| {name} | {r}/{n} | {:.2} |\n", self.rate(name)));
        }
        out.push_str(&format!("| **mean** | | **{:.2}** |\n", self.mean()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_has_its_rule() {
        assert!(is_right(
            "author",
            "Müller, Maurice Edmond",
            "Maurice Edmond Müller"
        ));
        assert!(!is_right("author", "Müller, Maurice", "Müller, Moritz"));
        assert!(is_right(
            "title",
            "Die Alpen im Winter.",
            "die alpen im winter"
        ));
        assert!(is_right(
            "title",
            "Die Alpen im Winter",
            "Die A1pen im Winter"
        ));
        assert!(!is_right("title", "Die Alpen im Winter", "Die Alpen"));
        assert!(is_right("year", "1939", "1939"));
        assert!(!is_right("year", "1939", "1938"));
        assert!(is_right("place", "Frankfurt a.M.", "Frankfurt a M"));
        assert!(is_right("pages", "X,184", "X, 184"));
        assert!(is_right("shelfmark", "U 36. 7342", "[U 36.7342"));
    }

    #[test]
    fn values_on_neither_side_are_not_counted() {
        let mut t = Tally::default();
        let want = serde_json::json!({"year": 1939, "place": null, "pages": null});
        let got = serde_json::json!({"year": "1939", "place": null, "pages": "12"});
        let misses = t.add(
            &["year", "place", "pages"],
            want.as_object().unwrap(),
            got.as_object().unwrap(),
        );
        assert_eq!(t.fields["year"], (1, 1));
        assert!(!t.fields.contains_key("place"));
        assert_eq!(t.fields["pages"], (0, 1), "an invented value is wrong");
        assert_eq!(misses.len(), 1);
        assert!((t.mean() - 0.5).abs() < 1e-9);
    }
}
