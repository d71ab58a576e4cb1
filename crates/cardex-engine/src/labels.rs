//! Field mapping for OCR text: find the `Label: value` pairs of a card and
//! decide which field each label means.
//!
//! Pairs are found the way people set them out: a colon after the label,
//! several pairs on one line, a label set apart from its value by a wide
//! gap when OCR lost the colon (read from the word boxes), a value running
//! onto an indented next line. A label means a field when it is the
//! field's name, abbreviates it, or names the same concept in the
//! [`crate::vocabulary`] (English, German, French terms from Darwin Core,
//! MARC / ISBD and vCard) — exactly, as an abbreviation, or with the few
//! letters OCR gets wrong — or when the field's description uses it as a
//! word. Each label feeds at most one field and each field takes at most
//! one label, best matches first.

use cardex_core::Field;

use crate::vocabulary::{
    Concept, abbreviates, close_enough, concepts_of_label, fold, has_words, term_match,
};

/// One word as Tesseract read it: text, confidence (0–100) and box (pixels).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Word {
    /// The text.
    pub text: String,
    /// Tesseract's confidence, 0–100.
    pub confidence: f32,
    /// Left edge.
    pub left: i32,
    /// Top edge.
    pub top: i32,
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
}

impl Word {
    /// A word without a box (for text that did not come from an image).
    pub fn new(text: &str, confidence: f32) -> Self {
        Self {
            text: text.to_owned(),
            confidence,
            ..Self::default()
        }
    }

    /// Right edge.
    pub fn right(&self) -> i32 {
        self.left + self.width
    }
}

/// One line of OCR output: its words in reading order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OcrLine {
    /// Words in reading order.
    pub words: Vec<Word>,
}

impl OcrLine {
    /// The line as text.
    pub fn text(&self) -> String {
        join(&self.words)
    }

    /// Left edge of the first word.
    pub fn left(&self) -> i32 {
        self.words.first().map_or(0, |w| w.left)
    }

    /// Top of the highest word.
    pub fn top(&self) -> i32 {
        self.words.iter().map(|w| w.top).min().unwrap_or(0)
    }

    /// Bottom of the lowest word.
    pub fn bottom(&self) -> i32 {
        self.words
            .iter()
            .map(|w| w.top + w.height)
            .max()
            .unwrap_or(0)
    }

    /// Typical word height: the scale gaps and indents are measured in.
    pub fn height(&self) -> i32 {
        let mut h: Vec<i32> = self.words.iter().map(|w| w.height).collect();
        h.sort_unstable();
        h.get(h.len() / 2).copied().unwrap_or(0)
    }

    /// Indices where a new run of words starts after a gap much wider than
    /// a space: columns, or a label whose colon OCR lost. Without boxes
    /// (all zero) there are none.
    pub fn wide_gaps(&self) -> Vec<usize> {
        let limit = (self.height() as f32 * WIDE_GAP) as i32;
        (1..self.words.len())
            .filter(|&i| limit > 0 && self.words[i].left - self.words[i - 1].right() > limit)
            .collect()
    }
}

/// Words joined by single spaces.
pub fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `Label: value` pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Labeled {
    /// The label, folded (lower case, no accents or punctuation).
    pub label: String,
    /// The value as read.
    pub value: String,
    /// Mean word confidence of the value, 0–1.
    pub confidence: f32,
}

/// A gap wider than this many word heights sets two runs of words apart.
const WIDE_GAP: f32 = 1.5;

/// Trailing value words below this confidence (and at most 3 characters)
/// are taken for noise.
const NOISE_CONFIDENCE: f32 = 60.0;

/// Longest label taken as a label, in characters.
const MAX_LABEL_CHARS: usize = 32;

/// Most words a label without a colon, or one later on a line, may have.
const MAX_LABEL_WORDS: usize = 3;

/// Lower case, punctuation removed, whitespace collapsed.
pub fn normalize(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a folded label is one a card would carry: a field's name or a
/// term of the vocabulary.
fn known(label: &str, fields: &[Field]) -> bool {
    !label.is_empty()
        && (fields.iter().any(|f| score(label, f) > 0) || !concepts_of_label(label).is_empty())
}

/// Where a word's label colon is: not one between digits (`12:30`).
fn label_colon(word: &str) -> Option<usize> {
    let at = word.find(':')?;
    let before = word[..at].chars().next_back();
    let after = word[at + 1..].chars().next();
    let digits =
        before.is_some_and(|c| c.is_ascii_digit()) && after.is_some_and(|c| c.is_ascii_digit());
    (!digits).then_some(at)
}

/// A pair being read: label and value words (with confidences).
struct Pair {
    label: String,
    value: Vec<(String, f32)>,
}

impl Pair {
    fn finish(mut self) -> Labeled {
        // Specks and rule fragments read as short, unsure words at the end.
        while self.value.len() > 1
            && self
                .value
                .last()
                .is_some_and(|(w, c)| *c < NOISE_CONFIDENCE && w.chars().count() <= 3)
        {
            self.value.pop();
        }
        let value = self
            .value
            .iter()
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let confidence = if self.value.is_empty() {
            0.0
        } else {
            self.value.iter().map(|(_, c)| c.max(0.0)).sum::<f32>()
                / self.value.len() as f32
                / 100.0
        };
        Labeled {
            label: self.label,
            value: value.trim().to_owned(),
            confidence,
        }
    }
}

/// The pairs of one line, in order.
fn pairs_of_line(line: &OcrLine, fields: &[Field]) -> Vec<Pair> {
    let words = &line.words;
    let gaps = line.wide_gaps();
    let mut pairs: Vec<Pair> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let run_end = gaps.iter().copied().find(|&g| g > i).unwrap_or(words.len());
        // A dotted abbreviation opening a line (`leg. A. Roth`, `Tel. 555`)
        // is a label when it is exactly a term or the field's name.
        if i == 0 && words.len() > 1 && label_colon(&words[0].text).is_none() {
            let head = words[0].text.trim_end_matches('.');
            let label = fold(head);
            let exact = concepts_of_label(&label).iter().any(|(_, m)| *m == 3)
                || fields.iter().any(|f| score(&label, f) >= 90);
            if head.len() < words[0].text.len() && label.len() >= 2 && exact {
                pairs.push(Pair {
                    label,
                    value: Vec::new(),
                });
                i = 1;
                continue;
            }
        }
        // A label with its colon: the first on the line may be any short
        // text; a later one must be a label people use, or a colon in a
        // value (`Title: Rome: a history`) would split it.
        if let Some(k) = (i..run_end).find(|&k| label_colon(&words[k].text).is_some()) {
            let colon = label_colon(&words[k].text).expect("found above");
            let label_of = |from: usize| {
                let mut parts: Vec<&str> = words[from..k].iter().map(|w| w.text.as_str()).collect();
                parts.push(&words[k].text[..colon]);
                fold(&parts.join(" "))
            };
            let start = if pairs.is_empty() && i == 0 && k <= MAX_LABEL_WORDS {
                Some(i)
            } else {
                (k.saturating_sub(MAX_LABEL_WORDS - 1).max(i)..=k)
                    .rev()
                    .find(|&from| known(&label_of(from), fields))
            };
            if let Some(from) = start {
                let label = label_of(from);
                if !label.is_empty() && label.chars().count() <= MAX_LABEL_CHARS {
                    if let Some(p) = pairs.last_mut() {
                        p.value.extend(value_words(&words[i..from]));
                    }
                    let mut value = Vec::new();
                    let rest = words[k].text[colon + 1..].trim();
                    if !rest.is_empty() {
                        value.push((rest.to_owned(), words[k].confidence));
                    }
                    pairs.push(Pair { label, value });
                    i = k + 1;
                    continue;
                }
            }
        }
        // A label whose colon OCR lost: a run of at most a few words that
        // is a known label, with more words after the gap.
        let run = fold(&join(&words[i..run_end]));
        if run_end < words.len() && run_end - i <= MAX_LABEL_WORDS && known(&run, fields) {
            pairs.push(Pair {
                label: run,
                value: Vec::new(),
            });
            i = run_end;
            continue;
        }
        // Anything else belongs to the value being read, up to the next
        // word that starts a label.
        let next = (i + 1..run_end)
            .find(|&k| label_colon(&words[k].text).is_some())
            .map_or(run_end, |k| {
                k.saturating_sub(MAX_LABEL_WORDS - 1).max(i + 1)
            });
        if let Some(p) = pairs.last_mut() {
            p.value.extend(value_words(&words[i..next]));
        }
        i = next;
    }
    pairs
}

fn value_words(words: &[Word]) -> impl Iterator<Item = (String, f32)> + '_ {
    words.iter().map(|w| (w.text.clone(), w.confidence))
}

/// The `Label: value` pairs among OCR lines. `fields` are the batch's
/// fields, whose names count as labels too.
pub fn labeled_lines(lines: &[OcrLine], fields: &[Field]) -> Vec<Labeled> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let mut pairs = pairs_of_line(&lines[i], fields);
        let mut last = i;
        // A value runs on while the next lines carry no label, sit just
        // below and start indented from the label.
        if let Some(p) = pairs.last_mut().filter(|p| !p.value.is_empty()) {
            while let Some(next) = lines.get(last + 1) {
                let above = &lines[last];
                let h = above.height().max(1);
                let below = next.top() - above.bottom() < h;
                let indented = next.left() > lines[i].left() + h / 2;
                if !(below && indented && pairs_of_line(next, fields).is_empty()) {
                    break;
                }
                p.value.extend(value_words(&next.words));
                last += 1;
            }
        }
        out.extend(pairs.into_iter().map(Pair::finish));
        i = last + 1;
    }
    out
}

/// The concepts a field stands for, with a strength: 2 when its name is a
/// term of the concept, 1 when its name or description uses a term as
/// words.
pub fn field_concepts(field: &Field) -> Vec<(&'static Concept, u32)> {
    let name = fold(&field.name);
    let description = fold(&field.description);
    crate::vocabulary::CONCEPTS
        .iter()
        .filter_map(|c| {
            let by_name = c.terms.iter().any(|t| *t == name || abbreviates(&name, t));
            let by_words = c
                .terms
                .iter()
                .any(|t| t.len() >= 3 && (has_words(&name, t) || has_words(&description, t)));
            match (by_name, by_words) {
                (true, _) => Some((c, 2)),
                (false, true) => Some((c, 1)),
                _ => None,
            }
        })
        .collect()
}

/// How well a folded `label` names `field` (0 = not at all).
pub fn score(label: &str, field: &Field) -> u32 {
    let name = fold(&field.name);
    if label == name {
        return 100;
    }
    if abbreviates(label, &name) {
        return 90;
    }
    if close_enough(label, &name) {
        return 85;
    }
    let mut best = 0;
    for (concept, strength) in field_concepts(field) {
        let m = concept
            .terms
            .iter()
            .map(|t| term_match(label, t))
            .max()
            .unwrap_or(0);
        if m > 0 {
            let by_name = [0, 65, 70, 80][m as usize];
            best = best.max(if strength == 2 { by_name } else { by_name - 30 });
        }
    }
    if label.len() >= 3 && has_words(&fold(&field.description), label) {
        best = best.max(60);
    }
    best
}

/// For each field, the labeled line it takes (index into `lines`), if any.
pub fn assign(lines: &[Labeled], fields: &[Field]) -> Vec<Option<usize>> {
    let mut pairs: Vec<(u32, usize, usize)> = Vec::new();
    for (li, line) in lines.iter().enumerate() {
        for (fi, field) in fields.iter().enumerate() {
            let s = score(&line.label, field);
            if s > 0 && !line.value.is_empty() {
                pairs.push((s, li, fi));
            }
        }
    }
    // Best score first; ties go to the earlier line, then the earlier field.
    pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut taken_line = vec![false; lines.len()];
    let mut out = vec![None; fields.len()];
    for (_, li, fi) in pairs {
        if !taken_line[li] && out[fi].is_none() {
            taken_line[li] = true;
            out[fi] = Some(li);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cardex_core::FieldType;

    /// A line of words laid out left to right, 20 px high, one space
    /// between words; `|` in the text stands for a wide gap.
    pub(crate) fn line_at(text: &str, left: i32, top: i32) -> OcrLine {
        let mut x = left;
        let mut words = Vec::new();
        for w in text.split(' ') {
            if w == "|" {
                x += 100;
                continue;
            }
            if w.is_empty() {
                continue;
            }
            let width = 10 * w.chars().count() as i32;
            words.push(Word {
                text: w.to_owned(),
                confidence: 90.0,
                left: x,
                top,
                width,
                height: 20,
            });
            x += width + 8;
        }
        OcrLine { words }
    }

    fn line(text: &str) -> OcrLine {
        line_at(text, 0, 0)
    }

    /// Lines 30 px apart; a leading `>` indents a line by 60 px.
    fn page(text: &[&str]) -> Vec<OcrLine> {
        text.iter()
            .enumerate()
            .map(|(i, t)| match t.strip_prefix('>') {
                Some(t) => line_at(t, 60, 30 * i as i32),
                None => line_at(t, 0, 30 * i as i32),
            })
            .collect()
    }

    fn map(text: &[&str], fields: &[Field]) -> Vec<Option<String>> {
        let labeled = labeled_lines(&page(text), fields);
        assign(&labeled, fields)
            .into_iter()
            .map(|i| i.map(|i| labeled[i].value.clone()))
            .collect()
    }

    fn fields(names: &[&str]) -> Vec<Field> {
        names
            .iter()
            .map(|n| Field::new(n, FieldType::Text))
            .collect()
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some((*v).to_owned())).collect()
    }

    #[test]
    fn splits_label_and_value_at_the_first_colon() {
        let l = labeled_lines(
            &[
                line("Call No.: AD8666 .H75"),
                line("no label here"),
                line("Time: 12:30"),
            ],
            &[],
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].label, "call no");
        assert_eq!(l[0].value, "AD8666 .H75");
        assert!((l[0].confidence - 0.9).abs() < 1e-6);
        assert_eq!(l[1].value, "12:30");
        let glued = labeled_lines(&[line("Loc.:Madrid")], &[]);
        assert_eq!(glued[0].value, "Madrid");
        let mut noisy = line("Locality: Toronto a OO");
        noisy.words[3].confidence = 20.0;
        noisy.words[2].confidence = 35.0;
        assert_eq!(labeled_lines(&[noisy], &[])[0].value, "Toronto");
        let f = fields(&["title"]);
        assert_eq!(
            map(&["Title: Rome: a history"], &f),
            some(&["Rome: a history"])
        );
    }

    #[test]
    fn specimen_labels() {
        let f = fields(&["species", "collector", "locality", "date"]);
        let got = map(
            &[
                "Taxon: Acer campestre",
                "Coll.: Hugo Holloway",
                "Loc.: Prague",
                "Collected: 1930-06-06",
            ],
            &f,
        );
        assert_eq!(
            got,
            some(&["Acer campestre", "Hugo Holloway", "Prague", "1930-06-06"])
        );
    }

    #[test]
    fn catalog_labels() {
        let f = fields(&["title", "author", "year", "call_number"]);
        let got = map(
            &[
                "TITLE: Voyage Maps",
                "By: Luis Fontaine",
                "Date: 1875",
                "Call No.: AD8666 .H75",
            ],
            &f,
        );
        assert_eq!(
            got,
            some(&["Voyage Maps", "Luis Fontaine", "1875", "AD8666 .H75"])
        );
        let got = map(&["Shelfmark: KR35 .K70"], &f);
        assert_eq!(got[3].as_deref(), Some("KR35 .K70"));
    }

    #[test]
    fn business_card_labels() {
        let f = fields(&["name", "company", "phone", "city"]);
        let got = map(
            &[
                "Name: Ada Ibarra",
                "Firm: Acme Ltd",
                "Tel.: +44 20 7946 0958",
                "Town: Leeds",
            ],
            &f,
        );
        assert_eq!(
            got,
            some(&["Ada Ibarra", "Acme Ltd", "+44 20 7946 0958", "Leeds"])
        );
    }

    #[test]
    fn german_and_french_labels() {
        let f = fields(&[
            "author",
            "title",
            "call_number",
            "locality",
            "collector",
            "date",
        ]);
        let got = map(
            &[
                "Verfasser: Inge Marie",
                "Titel: Die Alpen",
                "Signatur: Ms 12",
                "Fundort: Basel",
                "leg. Anna Roth",
                "Datum: 1901",
            ],
            &f,
        );
        assert_eq!(
            got[..4],
            some(&["Inge Marie", "Die Alpen", "Ms 12", "Basel"])
        );
        assert_eq!(got[4..], some(&["Anna Roth", "1901"]));
        let f = fields(&["phone", "company", "city", "locality"]);
        let got = map(
            &[
                "Téléphone: 01 23",
                "Firma: Roth AG",
                "Ort: Bern",
                "Lieu: Sion",
            ],
            &f,
        );
        assert_eq!(got, some(&["01 23", "Roth AG", "Bern", "Sion"]));
        let f = fields(&["collector"]);
        assert_eq!(map(&["Sammler: J. Weber"], &f), some(&["J. Weber"]));
    }

    #[test]
    fn several_pairs_on_one_line() {
        let f = fields(&["name", "phone", "email"]);
        let got = map(&["Name: Ada Ibarra | Tel.: 555 01 | E-Mail: ada@x.org"], &f);
        assert_eq!(got, some(&["Ada Ibarra", "555 01", "ada@x.org"]));
        let got = map(&["Name: Ada Ibarra Tel.: 555 01"], &f);
        assert_eq!(got[..2], some(&["Ada Ibarra", "555 01"]), "no gap needed");
    }

    #[test]
    fn a_label_whose_colon_was_lost_is_found_by_the_gap() {
        let f = fields(&["collector", "locality"]);
        let got = map(&["Collector | Hugo Holloway", "Locality. | Prague"], &f);
        assert_eq!(got, some(&["Hugo Holloway", "Prague"]));
        assert_eq!(
            map(&["Collector Hugo Holloway"], &f)[0],
            None,
            "without a gap it is text"
        );
    }

    #[test]
    fn values_run_onto_an_indented_next_line() {
        let f = fields(&["title", "author"]);
        let got = map(
            &[
                "Title: The voyage of the",
                ">Beagle, revised",
                "Author: Darwin",
            ],
            &f,
        );
        assert_eq!(got, some(&["The voyage of the Beagle, revised", "Darwin"]));
        let got = map(&["Title: The voyage", "Not part of it"], &f);
        assert_eq!(got[0].as_deref(), Some("The voyage"), "not indented");
    }

    #[test]
    fn ocr_errors_in_labels_are_forgiven() {
        let f = fields(&["collector", "locality", "phone"]);
        let got = map(
            &["Colector: Hugo", "Locallty: Prague", "Telephome: 555"],
            &f,
        );
        assert_eq!(got, some(&["Hugo", "Prague", "555"]));
        let f = fields(&["tel"]);
        assert_eq!(
            map(&["Tal: 3"], &f)[0],
            None,
            "short labels must match exactly"
        );
    }

    #[test]
    fn no_matches_inside_words() {
        let f = vec![
            Field::new("age", FieldType::Text).describe("the age of the tree"),
            Field::new("name", FieldType::Text),
        ];
        let got = map(&["Image: scan 3", "Scientific name: Acer"], &f);
        assert_eq!(got, vec![None, None]);
        let f = vec![Field::new("ref", FieldType::Text).describe("an image reference")];
        assert_eq!(map(&["Age: 7"], &f)[0], None);
    }

    #[test]
    fn descriptions_teach_new_labels() {
        let f = vec![
            Field::new("ref", FieldType::Text)
                .describe("The archive signature (Signatur) of the letter"),
        ];
        assert_eq!(map(&["Signatur: A-17"], &f)[0].as_deref(), Some("A-17"));
        assert_eq!(
            map(&["Colour: red"], &f)[0],
            None,
            "unrelated labels stay unmatched"
        );
    }
}
