//! Field mapping for OCR text: find `Label: value` lines and decide which
//! field each label means, tolerant of case, punctuation and abbreviations
//! (`Tel.` → phone, `Coll.` → collector, `Call No.` → call number), using
//! the field's name, a table of common synonyms, and the words of the
//! field's description (`Shelfmark` → call number when the description
//! mentions shelfmarks). Each label feeds at most one field and each field
//! takes at most one label, best matches first.

use cardex_core::Field;

/// One line of OCR output: its words and their confidences (0–100).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OcrLine {
    /// Words in reading order, with Tesseract's confidence for each.
    pub words: Vec<(String, f32)>,
}

impl OcrLine {
    /// The line as text.
    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A `Label: value` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Labeled {
    /// The label, normalised (lower case, no punctuation).
    pub label: String,
    /// The value as read.
    pub value: String,
    /// Mean word confidence of the value, 0–1.
    pub confidence: f32,
}

/// Words that mean the same thing on cards. A field belongs to a group
/// when its name (or a description word) is in it.
const SYNONYMS: &[&[&str]] = &[
    &["phone", "telephone", "tel", "mobile", "cell", "fax", "ph"],
    &["email", "e mail", "mail"],
    &[
        "collector",
        "collected by",
        "coll",
        "leg",
        "legit",
        "gatherer",
    ],
    &["locality", "location", "loc", "place", "site", "locale"],
    &["species", "taxon", "scientific name", "sp"],
    &["date", "collected", "dated", "collection date", "when"],
    &["year", "date", "published", "publication year", "pub year"],
    &["author", "by", "writer", "written by", "creator"],
    &["title", "book"],
    &[
        "call number",
        "call no",
        "shelfmark",
        "shelf mark",
        "classmark",
        "signature",
        "call",
    ],
    &["city", "town"],
    &[
        "company",
        "firm",
        "organisation",
        "organization",
        "employer",
        "business",
    ],
    &["name", "contact", "person"],
    &["address", "addr", "street"],
    &["publisher", "imprint"],
];

/// Trailing value words below this confidence (and at most 3 characters)
/// are taken for noise.
const NOISE_CONFIDENCE: f32 = 60.0;

/// Longest label taken as a label, in characters.
const MAX_LABEL_CHARS: usize = 32;

/// Lower case, punctuation removed, whitespace collapsed.
pub fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `Label: value` lines among OCR lines.
pub fn labeled_lines(lines: &[OcrLine]) -> Vec<Labeled> {
    let mut out = Vec::new();
    for line in lines {
        let Some(split) = line.words.iter().position(|(w, _)| w.contains(':')) else {
            continue;
        };
        let (word, _) = &line.words[split];
        let colon = word.find(':').expect("found above");
        let mut label = line.words[..split]
            .iter()
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>();
        label.push(&word[..colon]);
        let label = normalize(&label.join(" "));
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            continue;
        }
        let mut value_words: Vec<(&str, f32)> = Vec::new();
        let rest = word[colon + 1..].trim();
        if !rest.is_empty() {
            value_words.push((rest, line.words[split].1));
        }
        value_words.extend(
            line.words[split + 1..]
                .iter()
                .map(|(w, c)| (w.as_str(), *c)),
        );
        // Specks and rule fragments read as short, unsure words at the end.
        while value_words.len() > 1
            && value_words
                .last()
                .is_some_and(|(w, c)| *c < NOISE_CONFIDENCE && w.chars().count() <= 3)
        {
            value_words.pop();
        }
        let value = value_words
            .iter()
            .map(|(w, _)| *w)
            .collect::<Vec<_>>()
            .join(" ");
        let confidence = if value_words.is_empty() {
            0.0
        } else {
            value_words.iter().map(|(_, c)| c.max(0.0)).sum::<f32>()
                / value_words.len() as f32
                / 100.0
        };
        out.push(Labeled {
            label,
            value: value.trim().to_owned(),
            confidence,
        });
    }
    out
}

/// Whether `short` abbreviates `long` word by word: `coll` → `collector`,
/// `call no` → `call number`.
fn abbreviates(short: &str, long: &str) -> bool {
    let s: Vec<&str> = short.split(' ').collect();
    let l: Vec<&str> = long.split(' ').collect();
    s.len() == l.len()
        && s.iter()
            .zip(&l)
            .all(|(a, b)| a.len() >= 2 && b.starts_with(a))
        && short != long
}

/// The synonym groups `word` belongs to.
fn groups_of<'a>(word: &'a str) -> impl Iterator<Item = &'static &'static [&'static str]> + 'a {
    SYNONYMS.iter().filter(move |g| g.contains(&word))
}

/// How well `label` names `field` (0 = not at all).
fn score(label: &str, field: &Field) -> u32 {
    let name = normalize(&field.name.replace('_', " "));
    if label == name {
        return 100;
    }
    if abbreviates(label, &name) {
        return 90;
    }
    let mut best = 0;
    for group in groups_of(&name) {
        if group.contains(&label) {
            best = best.max(80);
        } else if group.iter().any(|m| abbreviates(label, m)) {
            best = best.max(70);
        }
    }
    let description = normalize(&field.description);
    let words: Vec<&str> = description.split(' ').filter(|w| w.len() >= 3).collect();
    if !label.is_empty() && (description.contains(label) && label.len() >= 3) {
        best = best.max(60);
    }
    for w in &words {
        if groups_of(w).any(|g| g.contains(&label)) {
            best = best.max(50);
        }
    }
    best
}

/// For each field, the labeled line it takes (index into `lines`), if any.
pub fn assign(lines: &[Labeled], fields: &[Field]) -> Vec<Option<usize>> {
    let mut pairs: Vec<(u32, usize, usize)> = Vec::new();
    for (li, line) in lines.iter().enumerate() {
        for (fi, field) in fields.iter().enumerate() {
            let s = score(&line.label, field);
            if s > 0 {
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
mod tests {
    use super::*;
    use cardex_core::FieldType;

    fn line(text: &str) -> OcrLine {
        OcrLine {
            words: text
                .split_whitespace()
                .map(|w| (w.to_owned(), 90.0))
                .collect(),
        }
    }

    fn map(text: &[&str], fields: &[Field]) -> Vec<Option<String>> {
        let lines: Vec<OcrLine> = text.iter().map(|t| line(t)).collect();
        let labeled = labeled_lines(&lines);
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

    #[test]
    fn splits_label_and_value_at_the_first_colon() {
        let l = labeled_lines(&[
            line("Call No.: AD8666 .H75"),
            line("no label here"),
            line("Time: 12:30"),
        ]);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].label, "call no");
        assert_eq!(l[0].value, "AD8666 .H75");
        assert!((l[0].confidence - 0.9).abs() < 1e-6);
        assert_eq!(l[1].value, "12:30");
        let glued = labeled_lines(&[line("Loc.:Madrid")]);
        assert_eq!(glued[0].value, "Madrid");
        let mut noisy = line("Locality: Toronto a OO");
        noisy.words[3].1 = 20.0;
        noisy.words[2].1 = 35.0;
        assert_eq!(labeled_lines(&[noisy])[0].value, "Toronto");
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
            [
                Some("Acer campestre"),
                Some("Hugo Holloway"),
                Some("Prague"),
                Some("1930-06-06")
            ]
            .map(|s| s.map(str::to_owned))
        );
        let got = map(
            &[
                "Species: Tilia cordata",
                "Collector: Elena",
                "Locality: Madrid",
                "Date: 1894-08-06",
            ],
            &f,
        );
        assert_eq!(got[3].as_deref(), Some("1894-08-06"));
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
            [
                Some("Voyage Maps"),
                Some("Luis Fontaine"),
                Some("1875"),
                Some("AD8666 .H75")
            ]
            .map(|s| s.map(str::to_owned))
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
            [
                Some("Ada Ibarra"),
                Some("Acme Ltd"),
                Some("+44 20 7946 0958"),
                Some("Leeds")
            ]
            .map(|s| s.map(str::to_owned))
        );
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
