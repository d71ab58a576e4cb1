//! Reading a library catalog card that carries no labels: its structure is
//! the catalog entry, set out in the order and punctuation that ISBD, AACR
//! and the Prussian Instructions share — heading (`Surname, Given names`),
//! title, imprint (`Place : Publisher, Year`, `Place Year: Publisher`,
//! `Place, Year`), extent (`61 S.`, `xii, 300 p.`), format (`8°`, `24 cm`),
//! notes, and the call number in a corner or on a `Standort:` line.
//!
//! [`parse`] finds those parts in OCR lines; [`fill`] maps them to a
//! batch's fields through the fields' concepts ([`crate::labels`]). A part
//! the entry does not show stays out.

use cardex_core::Field;

use crate::labels::{OcrLine, Word, field_concepts, join, labeled_lines};
use crate::vocabulary::{CONCEPTS, concepts_of_label, fold, term_match};

/// The names of a shelfmark (`Standort`, `Signatur`, `Call no.`).
fn shelfmark_terms() -> &'static [&'static str] {
    CONCEPTS
        .iter()
        .find(|c| c.key == "shelfmark")
        .map_or(&[], |c| c.terms)
}

/// One part of an entry: its text and mean OCR confidence (0–1).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The text, as read (brackets and closing punctuation removed).
    pub value: String,
    /// Mean word confidence, 0–1.
    pub confidence: f32,
}

/// The parts of a catalog entry, by the vocabulary concept each stands for
/// (`author`, `title`, `edition`, `place`, `publisher`, `year`, `extent`,
/// `format`, `shelfmark`, `notes`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogEntry {
    /// Concept key → part, in the entry's order.
    pub parts: Vec<(&'static str, Part)>,
}

impl CatalogEntry {
    /// The part standing for `key`.
    pub fn get(&self, key: &str) -> Option<&Part> {
        self.parts.iter().find(|(k, _)| *k == key).map(|(_, p)| p)
    }

    /// The part's text.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).map(|p| p.value.as_str())
    }

    fn set(&mut self, key: &'static str, tokens: &[Tok]) {
        let value = clean(
            &tokens
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        if value.chars().any(char::is_alphanumeric) && self.get(key).is_none() {
            let confidence =
                tokens.iter().map(|t| t.conf.max(0.0)).sum::<f32>() / tokens.len() as f32 / 100.0;
            self.parts.push((key, Part { value, confidence }));
        }
    }
}

/// A word of the entry's running text.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    conf: f32,
    /// Index of the OCR line it came from.
    line: usize,
}

/// Brackets (editorial additions) and closing punctuation off a value; a
/// full stop stays after an abbreviation (`Freiburg i. B.`).
fn clean(s: &str) -> String {
    let s: String = s.chars().filter(|c| !"[]{}".contains(*c)).collect();
    let punct = |c: char| c.is_whitespace() || ",:;/=-—–~".contains(c);
    let mut s = s
        .trim_start_matches(|c: char| punct(c) || c == '.')
        .trim_end_matches(punct);
    while let Some(rest) = s.strip_suffix('.') {
        let last = rest.rsplit([' ', '.']).next().unwrap_or("");
        if letters(last) < 3 && digits(last) == 0 && !rest.ends_with('.') && !last.is_empty() {
            break;
        }
        s = rest.trim_end_matches(punct);
    }
    let opens = s.matches('(').count();
    let closes = s.matches(')').count();
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        if !inner.contains(['(', ')']) {
            s = inner;
        }
    } else if opens > closes {
        s = s.strip_prefix('(').unwrap_or(s);
    } else if closes > opens {
        s = s.strip_suffix(')').unwrap_or(s);
    }
    s.trim_matches(punct).to_owned()
}

/// Letters of a token.
fn letters(t: &str) -> usize {
    t.chars().filter(|c| c.is_alphabetic()).count()
}

/// Digits of a token.
fn digits(t: &str) -> usize {
    t.chars().filter(char::is_ascii_digit).count()
}

/// A separator between areas (` -- `, ` — `, and what OCR makes of them).
fn is_separator(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| "-—–~=+_<>".contains(c))
}

/// A token that closes a sentence: a word (not an initial or an
/// abbreviation like `i.` or `Pr.`) or a number, then a full stop.
fn ends_sentence(t: &str) -> bool {
    let t = t.trim_end_matches([')', ']', '"', '\'', '”']);
    let Some(body) = t.strip_suffix(['.', '!', '?']) else {
        return false;
    };
    // The last piece decides: `Frankfurt/M.` and `a.M.` end in initials.
    let last = body.rsplit(['.', '/', '-']).next().unwrap_or("");
    let abbreviation = ABBREVIATIONS.contains(&fold(last).as_str());
    !body.ends_with('.')
        && !abbreviation
        && (letters(last) >= 3 || (letters(body) == 0 && digits(body) >= 2))
}

/// Abbreviations of the imprint and of institutions that end in a full
/// stop without ending a sentence (`Verl. Chemie`, `Univ. Press`).
const ABBREVIATIONS: &[&str] = &[
    "verl", "buchdr", "buchh", "druck", "univ", "impr", "akad", "hochsch", "techn", "tekn", "ges",
    "hrsg", "bd", "inc", "ltd", "ed", "eds", "aufl", "dept", "inst", "soc", "acad", "vol", "publ",
];

/// Name words that are not part of the name: forms of address.
const HONORIFICS: &[&str] = &[
    "mademoiselle",
    "madame",
    "monsieur",
    "mlle",
    "mme",
    "frau",
    "herr",
    "fraulein",
    "mr",
    "mrs",
    "miss",
    "ms",
    "dr",
    "prof",
];

/// Particles that stand as words of a surname (`van der Loeff`).
const PARTICLES: &[&str] = &[
    "von", "van", "de", "der", "den", "del", "della", "di", "da", "du", "la", "le", "zu", "zur",
    "ten", "ter", "v", "d", "y", "af", "av", "des", "dos", "el",
];

/// The year a token gives, when it looks like one (OCR reads `1` as `i`,
/// `l` or `t`, `0` as `o`, `9` as `g`). Ranges (`1921/22`, `1916-1917`)
/// give their first year. Returns `(shape, value)`: `shape` when the token
/// is written like a year at all, `value` when it is a plausible one.
fn year_of(t: &str) -> (bool, Option<u32>) {
    let core = t.trim_matches(|c: char| !c.is_alphanumeric());
    let core = core.split(['/', '-']).next().unwrap_or("");
    // Without two real digits, only an imprint's `Year:` is trusted.
    let imprint = t.ends_with(':') && core.starts_with(['1', 'i', 'l', 'I', 't', 'ı']);
    if core.chars().count() != 4 || (digits(core) < 2 && !imprint) {
        return (false, None);
    }
    let fixed: String = core
        .chars()
        .map(|c| match c {
            'i' | 'l' | 'I' | 't' | 'ı' => '1',
            'o' | 'O' => '0',
            'g' => '9',
            c => c,
        })
        .collect();
    match fixed.parse::<u32>() {
        Ok(y) => (true, (1450..=2099).contains(&y).then_some(y)),
        Err(_) => (false, None),
    }
}

/// Whether a token is a size: `8°`, `4'`, `8:o`, `in-8°`, `4to`.
fn is_format(t: &str) -> bool {
    let t = t.trim_matches(|c: char| "[](),.;".contains(c));
    let t = t
        .strip_prefix("in-")
        .or_else(|| t.strip_prefix("In-"))
        .unwrap_or(t);
    let n = t.chars().take_while(char::is_ascii_digit).count();
    let rest = &t[n..];
    (1..=2).contains(&n)
        && (matches!(
            rest,
            "°" | "'" | "!" | "\"" | "”" | "%" | "º" | "⁰" | ":o" | ":0" | "o" | "e" | "to" | "vo"
        ) || (rest.is_empty() && t.len() < 3 && t != "0"))
        && !(rest.is_empty() && n == 2)
}

/// Units of an extent: pages, leaves (German `S.`, `Bl.`; French `p.`, `f.`).
const EXTENT_UNITS: &[&str] = &[
    "s",
    "p",
    "pp",
    "pg",
    "pag",
    "bl",
    "f",
    "ff",
    "l",
    "seiten",
    "pages",
    "leaves",
    "feuillets",
];

/// Whether a token is a page count or a list of them (`184`, `XI,332`,
/// `24,`), possibly in brackets.
fn is_count(t: &str) -> bool {
    let t = t.trim_matches(|c: char| "[](),.".contains(c));
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || "IVXLCivxlc,-".contains(c))
        && (digits(t) > 0 || t.chars().all(|c| "IVXLCivxlc".contains(c)))
}

/// Words that open a note rather than the title: dissertation and thesis
/// statements, abstracts, offprints, typescripts.
const NOTE_WORDS: &[&str] = &[
    "diss",
    "dissertation",
    "inaug",
    "hab",
    "habil",
    "habilitationsschrift",
    "these",
    "thesis",
    "abstract",
    "auszug",
    "ausz",
    "afh",
    "afhandling",
    "avh",
    "avhandling",
    "akad",
    "proefschrift",
    "tesi",
    "tesis",
    "masch",
    "maschinenschrift",
    "sonderdruck",
    "sonderabdruck",
    "sa",
    "repr",
    "reprint",
    "diplomarbeit",
];

/// Words that open an illustration statement (`(mit Kart.)`, `[Fig.]`,
/// `(Avec 2 tableaux.)`).
const ILLUSTRATION_WORDS: &[&str] = &[
    "mit", "avec", "with", "fig", "figs", "tab", "taf", "abb", "ill", "illus", "kart", "karte",
    "pl", "portr", "tabl", "tableaux", "maps",
];

/// Where the title starts in the area after the heading: past a note on
/// where the work was done (`Aus d. chir. Klinik d. Univ. Breslau. Dir.:
/// Küttner.`), which German dissertation lists put first.
fn title_start(area: &[Tok]) -> usize {
    let word = |i: usize| area.get(i).map(|t| fold(&t.text)).unwrap_or_default();
    if !(word(0) == "aus" && ["d", "dem", "der", "den"].contains(&word(1).as_str())) {
        return 0;
    }
    let sentence_end = |from: usize| {
        (from..area.len())
            .find(|&i| ends_sentence(&area[i].text))
            .map(|i| i + 1)
    };
    // The head of the institution (`Dir.:`, `Leiter:`) closes the note;
    // without one, the first sentence does.
    match area.iter().take(16).position(|t| t.text.ends_with(':')) {
        Some(label) => sentence_end(label + 1).unwrap_or(0),
        None => sentence_end(0).unwrap_or(0),
    }
}

/// Lines that only say "see" (a cross-reference card: the filing heading
/// above, the entry below).
fn is_see(line: &OcrLine) -> bool {
    let text = fold(&line.text());
    line.words.len() <= 2
        && letters(&text) > 0
        && (text.chars().count() <= 2
            || ["see", "siehe", "voir", "see also"].contains(&text.as_str()))
}

/// Whether a line opens with a heading: `Surname, Given`, `SURNAME (Given)`,
/// `SURNAME.` or a letter-spaced name.
fn looks_like_heading(line: &OcrLine) -> bool {
    let words: Vec<&str> = line
        .words
        .iter()
        .map(|w| w.text.as_str())
        .skip_while(|w| is_noise(w))
        .take(4)
        .collect();
    let Some(first) = words.first() else {
        return false;
    };
    let upper = first.chars().next().is_some_and(char::is_uppercase);
    let spaced = words.iter().take(3).all(|w| letters(w) == 1);
    upper
        && (spaced
            || words.iter().any(|w| w.ends_with(',') || w.starts_with('('))
            || (letters(first) >= 3
                && first
                    .trim_end_matches('.')
                    .chars()
                    .all(|c| !c.is_lowercase())
                && first.ends_with('.')))
}

/// A "word" that is a speck or a rule: no letter or digit, and none of
/// the punctuation an entry is written with.
fn is_speck(w: &str) -> bool {
    !w.chars()
        .any(|c| c.is_alphanumeric() || "-—–~=:;/,&§".contains(c))
}

/// Specks, rules and numbering in front of a heading.
fn is_noise(w: &str) -> bool {
    !w.chars().any(char::is_alphanumeric) || (digits(w) > 0 && letters(w) == 0 && w.ends_with('.'))
}

/// Whether the words at the right end of a line are a call number set in
/// the corner: mostly capitals and digits, no extent or format.
fn corner_like(words: &[Word]) -> bool {
    let text = join(words);
    let lower = text.chars().filter(|c| c.is_lowercase()).count();
    call_number_like(&text)
        && digits(&text) >= 2
        && lower <= 3
        && !words
            .iter()
            .any(|w| is_format(&w.text) || EXTENT_UNITS.contains(&fold(&w.text).as_str()))
}

/// Whether `text` looks like a call number: letters and digits, short.
fn call_number_like(text: &str) -> bool {
    let t = text.trim_start_matches(['[', '(', '<', '{', '|']);
    digits(t) > 0
        && letters(t) > 0
        && t.chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '.')
        && t.chars().count() <= 32
}

/// Splits tokens the way typists and OCR glue them: `Place.--`,
/// `Bochum:1939`, `a.M,1972`, `0.0.1956`, `S.203-210`.
fn split_glued(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let spaced = text
        .replace("--", " -- ")
        .replace('—', " — ")
        .replace(';', "; ");
    for piece in spaced.split_whitespace() {
        // A separator glued to a word's end (`Ch'M'.-=`).
        let sep = piece
            .chars()
            .rev()
            .take_while(|c| "-—–~=".contains(*c))
            .count();
        let piece = if sep >= 2 && sep < piece.chars().count() {
            let at = piece
                .char_indices()
                .rev()
                .nth(sep - 1)
                .map_or(0, |(i, _)| i);
            out.push(piece[..at].to_owned());
            out.push(piece[at..].to_owned());
            continue;
        } else {
            piece
        };
        let chars: Vec<char> = piece.chars().collect();
        let cut = (1..chars.len()).find(|&i| {
            let before: String = chars[..i].iter().collect();
            chars[i].is_ascii_digit()
                && ".,:".contains(chars[i - 1])
                && (letters(&before) > 0
                    || fold(&before)
                        .replace(' ', "")
                        .chars()
                        .all(|c| c == 'o' || c == '0'))
                && (chars[i..].iter().take_while(|c| c.is_ascii_digit()).count() == 4
                    || EXTENT_UNITS.contains(&fold(&before).as_str()))
        });
        match cut {
            Some(i) => {
                out.push(chars[..i].iter().collect());
                out.push(chars[i..].iter().collect());
            }
            None => out.push(piece.to_owned()),
        }
    }
    out
}

/// Reads a catalog entry from OCR lines. `None` when the lines do not look
/// like one (no heading and no imprint, extent or format).
pub fn parse(lines: &[OcrLine]) -> Option<CatalogEntry> {
    let mut entry = CatalogEntry::default();
    let body = set_apart_call_numbers(lines, &mut entry);
    let start = entry_start(&body);
    let strong_heading = body.get(start).is_some_and(|(_, l)| looks_like_heading(l));
    let toks = running_text(&body[start..]);
    let first_line = toks.first()?.line;

    // Heading, then (Prussian Instructions) a description of the person up
    // to a colon, and the person's dates.
    let heading_end = heading_end(&toks, first_line);
    if let Some(name) = heading_text(&toks[..heading_end]) {
        let conf = mean_conf(&toks[..heading_end]);
        entry.set(
            "author",
            &[Tok {
                text: name,
                conf,
                line: first_line,
            }],
        );
    }
    let mut from = heading_end;
    if toks[..heading_end]
        .iter()
        .filter(|t| t.text.ends_with(','))
        .count()
        >= 2
    {
        let same_line = toks[from..]
            .iter()
            .take(10)
            .take_while(|t| t.line == first_line);
        if let Some(c) = same_line
            .clone()
            .position(|t| t.text.trim_end_matches(';').ends_with(':'))
        {
            from += c + 1;
        }
    }
    from += toks[from..]
        .iter()
        .take_while(|t| {
            let dates = t.line == first_line && digits(&t.text) >= 3 && letters(&t.text) == 0;
            dates || is_separator(&t.text) || !t.text.chars().any(char::is_alphanumeric)
        })
        .count();
    let rest = &toks[from..];

    // The imprint ends at its year: the last year before the physical
    // description (extent or format), as notes after it carry years too.
    let extent = find_extent(rest);
    let format = find_format(rest, extent.as_ref());
    let anchor = [
        extent.as_ref().map(|e| e.start),
        format.as_ref().map(|f| f.0),
    ]
    .into_iter()
    .flatten()
    .min();
    let imprint_year = match anchor {
        Some(a) => (0..a).rev().find(|&i| year_of(&rest[i].text).0),
        None => (0..rest.len()).find(|&i| year_of(&rest[i].text).0),
    };
    // An unreadable imprint year is taken from the notes (a dissertation's
    // date), which follow it.
    let year = imprint_year
        .and_then(|i| year_of(&rest[i].text).1)
        .or_else(|| {
            let from = imprint_year.or(anchor).unwrap_or(0);
            rest[from..].iter().find_map(|t| year_of(&t.text).1)
        });
    let mut title_end = rest.len();
    if let Some(y) = imprint_year {
        let imprint = imprint_phrase(rest, y);
        title_end = imprint.start;
        if let Some(place) = imprint.place {
            entry.set("place", &[place]);
        }
        let publisher = imprint
            .publisher
            .map_or_else(|| publisher_after(rest, y, anchor), |p| vec![p]);
        entry.set("publisher", &publisher);
    }
    if let Some(y) = year {
        let conf = imprint_year.map_or(0.0, |i| rest[i].conf);
        entry.set(
            "year",
            &[Tok {
                text: y.to_string(),
                conf,
                line: first_line,
            }],
        );
    }
    if let Some(a) = anchor {
        title_end = title_end.min(a);
    }
    if let Some(sep) = rest
        .iter()
        .position(|t| is_separator(&t.text) || t.text == "/")
    {
        title_end = title_end.min(sep);
    }
    let skip = title_start(&rest[..title_end]);
    let (title, title_notes) = split_notes(&rest[skip..title_end]);
    let title_notes: Vec<Tok> = rest[..skip].iter().chain(title_notes).cloned().collect();
    entry.set("title", title);
    if let Some(e) = &extent {
        entry.set("extent", &e.counts);
    }
    if let Some((_, f)) = &format {
        entry.set("format", f);
    }

    // After the physical description come notes; a short line with a
    // number among them is a shelfmark, where catalogues write it below.
    let last_line = anchor.or(imprint_year).map_or(first_line, |i| rest[i].line);
    let mut notes: Vec<Tok> = title_notes;
    for (li, line) in body.iter().filter(|(li, _)| *li > last_line) {
        let toks: Vec<Tok> = line.words.iter().map(|w| tok(w, *li)).collect();
        let text = line.text();
        let first = line.words[0].text.trim_start_matches(['[', '(', '<']);
        let note = line.words[1..]
            .iter()
            .any(|w| NOTE_WORDS.contains(&fold(&w.text).split(' ').next().unwrap_or("")));
        let shelf = line.words.len() <= 4
            && text.chars().count() <= 30
            && call_number_like(&text)
            && first.chars().next().is_some_and(char::is_uppercase)
            && !first.ends_with(',')
            && !note;
        if shelf && entry.get("shelfmark").is_none() {
            entry.set("shelfmark", &toks);
        } else {
            notes.extend(toks);
        }
    }
    if !notes.is_empty() {
        entry.set("notes", &notes);
    }
    (strong_heading || imprint_year.is_some() || anchor.is_some()).then_some(entry)
}

fn tok(w: &Word, line: usize) -> Tok {
    Tok {
        text: w.text.clone(),
        conf: w.confidence,
        line,
    }
}

/// Takes the call number out of the lines — from a `Standort:` / `Call
/// no.` line, a block set apart at the right end of a line, or a column
/// of pieces left of the entry — and returns the lines of the entry, each
/// with its index.
fn set_apart_call_numbers(lines: &[OcrLine], entry: &mut CatalogEntry) -> Vec<(usize, OcrLine)> {
    // Specks and rules read as words of punctuation go first.
    let lines: Vec<OcrLine> = lines
        .iter()
        .map(|l| OcrLine {
            words: l
                .words
                .iter()
                .filter(|w| !is_speck(&w.text))
                .cloned()
                .collect(),
        })
        .filter(|l| !l.words.is_empty())
        .collect();
    let margin = lines.iter().map(OcrLine::left).min().unwrap_or(0);
    // The first run of a line, when it is a piece of a left column.
    let column_piece = |line: &OcrLine| {
        let gaps = line.wide_gaps();
        let run = gaps.first().copied().unwrap_or(line.words.len());
        let fits = run <= 2 && line.left() <= margin + line.height().max(1);
        let piece = &line.words[..run];
        let mixed =
            piece.iter().all(|w| digits(&w.text) > 0) && piece.iter().any(|w| letters(&w.text) > 0);
        (fits && mixed && call_number_like(&join(piece))).then_some((run, gaps.is_empty()))
    };
    // Lone short lines belong to the column only when there is one.
    let column_exists = lines
        .iter()
        .any(|l| column_piece(l).is_some_and(|(_, alone)| !alone));
    let mut corner: Vec<Tok> = Vec::new();
    let mut column: Vec<Tok> = Vec::new();
    let mut column_line = None;
    let mut body = Vec::new();
    for (li, line) in lines.iter().enumerate() {
        if let Some(l) = labeled_lines(std::slice::from_ref(line), &[]).first()
            && concepts_of_label(&l.label)
                .iter()
                .any(|(c, _)| c.key == "shelfmark")
        {
            let conf = l.confidence * 100.0;
            entry.set(
                "shelfmark",
                &[Tok {
                    text: l.value.clone(),
                    conf,
                    line: li,
                }],
            );
            continue;
        }
        // A `Standort` whose colon OCR read as a letter (`Standorts`).
        let first = line
            .words
            .first()
            .map(|w| fold(&w.text))
            .unwrap_or_default();
        let long_term = |t: &&str| t.len() >= 6 && !t.contains(' ') && term_match(&first, t) > 0;
        if line.words.len() > 1 && shelfmark_terms().iter().any(long_term) {
            let toks: Vec<Tok> = line.words[1..].iter().map(|w| tok(w, li)).collect();
            entry.set("shelfmark", &toks);
            continue;
        }
        let mut line = line.clone();
        let gaps = line.wide_gaps();
        if let Some(&g) = gaps.last() {
            let middle = (line.left() + line.words.last().map_or(0, Word::right)) / 2;
            let tail = &line.words[g..];
            if corner.is_empty() && tail.len() <= 4 && tail[0].left > middle && corner_like(tail) {
                corner = tail.iter().map(|w| tok(w, li)).collect();
                line.words.truncate(g);
            }
        }
        if let Some((run, alone)) = column_piece(&line) {
            // A line with only a piece continues a column right above it.
            let below = column_line.is_some_and(|c| c + 1 == li);
            if column_exists && (!alone || (below && line.text().chars().count() <= 12)) {
                column.extend(line.words.drain(..run).map(|w| tok(&w, li)));
                column_line = Some(li);
            }
        }
        if !line.words.is_empty() {
            body.push((li, line));
        }
    }
    for found in [corner, column] {
        if !found.is_empty() {
            entry.set("shelfmark", &found);
        }
    }
    body
}

/// Where the entry starts: after a "see" line near the top of a
/// cross-reference card, else at the first of the first three lines that
/// looks like a heading, else at the top.
fn entry_start(body: &[(usize, OcrLine)]) -> usize {
    let heading = |i: usize| body.get(i).is_some_and(|(_, l)| looks_like_heading(l));
    // A scrap of a few words above another heading is not the heading.
    let scrap = |i: usize| body[i].1.words.len() <= 3 && heading(i + 1);
    (1..body.len().min(5))
        .find(|&i| is_see(&body[i - 1].1) && heading(i))
        .or_else(|| (0..body.len().min(3)).find(|&i| heading(i) && !scrap(i)))
        .unwrap_or(0)
}

/// The entry's words in reading order: glued words split, letter-spaced
/// headings joined, words broken at a line end joined again.
fn running_text(body: &[(usize, OcrLine)]) -> Vec<Tok> {
    let mut toks: Vec<Tok> = Vec::new();
    for (n, (li, line)) in body.iter().enumerate() {
        let mut words: Vec<Tok> = line
            .words
            .iter()
            .flat_map(|w| {
                split_glued(&w.text).into_iter().map(|text| Tok {
                    text,
                    conf: w.confidence,
                    line: *li,
                })
            })
            .collect();
        if n == 0 {
            let noise = words.iter().take_while(|t| is_noise(&t.text)).count();
            words = collapse_letter_spacing(words.split_off(noise));
        }
        if let (Some(last), Some(first)) = (toks.last_mut(), words.first()) {
            let lower = first.text.chars().next().is_some_and(char::is_lowercase);
            let word_end = last
                .text
                .strip_suffix('-')
                .and_then(|w| w.chars().last())
                .is_some_and(char::is_alphabetic);
            if word_end && lower {
                last.text.pop();
                last.text.push_str(&first.text);
                words.remove(0);
            }
        }
        toks.extend(words);
    }
    toks
}

/// Where the heading ends: at a colon or semicolon, the comma after the
/// given names, a full stop after a word (not an initial), the person's
/// dates, a separator, or the end of its line.
fn heading_end(toks: &[Tok], line: usize) -> usize {
    let mut end = 0;
    let mut comma = false;
    for (i, t) in toks.iter().enumerate() {
        let text = t.text.as_str();
        let descriptor = comma && i > 1 && text.starts_with('[');
        if t.line != line || is_separator(text) || year_of(text).0 || descriptor || end >= 6 {
            break;
        }
        end = i + 1;
        let bare = text.trim_end_matches([')', ']']);
        if text.ends_with([':', ';']) || (text.ends_with(',') && comma) {
            break;
        }
        if text.ends_with(',') {
            comma = true;
        } else if bare.ends_with('.') && letters(bare) >= 2 {
            break;
        }
    }
    end
}

fn mean_conf(toks: &[Tok]) -> f32 {
    if toks.is_empty() {
        return 0.0;
    }
    toks.iter().map(|t| t.conf).sum::<f32>() / toks.len() as f32
}

/// Joins runs of single letters (`D e l e r e ,` → `Delere,`), with a
/// hyphen carried over (`M o o t z - Spurk` → `Mootz-Spurk`).
fn collapse_letter_spacing(toks: Vec<Tok>) -> Vec<Tok> {
    let single = |t: &Tok| {
        letters(&t.text) == 1
            && t.text.chars().count() <= 2
            && t.text.chars().next().is_some_and(char::is_alphabetic)
    };
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let run = toks[i..].iter().take_while(|t| single(t)).count();
        if run < 3 {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        let mut word = toks[i].clone();
        word.text = toks[i..i + run].iter().map(|t| t.text.as_str()).collect();
        i += run;
        // A lone comma or hyphen after the run belongs to the name.
        while let Some(next) = toks.get(i) {
            if next.text == "," {
                word.text.push(',');
                i += 1;
            } else if next.text == "-" && toks.get(i + 1).is_some() {
                word.text.push('-');
                word.text.push_str(&toks[i + 1].text);
                i += 2;
            } else {
                break;
            }
        }
        out.push(word);
    }
    out
}

/// The heading's name: `Surname, Given` (a French `SURNAME (Given)` turned
/// round), without brackets and closing punctuation.
fn heading_text(heading: &[Tok]) -> Option<String> {
    let first = heading.first()?;
    if !first.text.chars().next().is_some_and(char::is_alphabetic) {
        return None;
    }
    let mut words: Vec<String> = heading
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                i,
                t.text
                    .chars()
                    .filter(|c| !"[]{}".contains(*c))
                    .collect::<String>(),
            )
        })
        .filter(|(i, w)| *i == 0 || !HONORIFICS.contains(&fold(w).as_str()))
        .map(|(_, w)| w)
        .collect();
    if let [surname, given] = words.as_slice()
        && given.starts_with('(')
    {
        let given = given.trim_matches(|c: char| !c.is_alphanumeric());
        return Some(format!("{}, {given}", clean(surname)));
    }
    // OCR breaks a letter-spaced surname into pieces (`Os te r1oh,`): a
    // piece of one or two letters that is no particle joins its neighbours.
    let comma = words.iter().position(|w| w.ends_with(',')).unwrap_or(0);
    let mut joined: Vec<String> = Vec::new();
    let mut glue_next = false;
    for (i, w) in words.drain(..).enumerate() {
        let particle = PARTICLES.contains(&fold(&w).as_str());
        let short = i > 0 && i <= comma && letters(&w) <= 2 && !particle;
        match joined.last_mut() {
            Some(last) if short || (glue_next && !particle && i <= comma) => {
                last.push_str(&w);
                glue_next = short;
            }
            _ => {
                joined.push(w);
                glue_next = false;
            }
        }
    }
    let text = joined
        .iter()
        .map(|w| letters_for_digits(w))
        .collect::<Vec<_>>()
        .join(" ");
    let text = clean(&text.replace(['(', ')'], ""));
    (letters(&text) >= 2).then_some(text)
}

/// A name word with OCR's digits for letters put right (`Oster1oh`).
fn letters_for_digits(w: &str) -> String {
    if letters(w) < 3 {
        return w.to_owned();
    }
    w.chars()
        .map(|c| match c {
            '1' => 'l',
            '0' => 'o',
            c => c,
        })
        .collect()
}

/// The imprint before its year.
struct Imprint {
    /// Where the imprint's words start (the title ends there).
    start: usize,
    /// The place, or places joined by `; `.
    place: Option<Tok>,
    /// The publisher, when it stands before the year.
    publisher: Option<Tok>,
}

/// One text made of several tokens, with their mean confidence.
fn merged(toks: &[Tok]) -> Option<Tok> {
    let text = clean(
        &toks
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let first = toks.first()?;
    (!text.is_empty()).then(|| Tok {
        text,
        conf: mean_conf(toks),
        line: first.line,
    })
}

/// The imprint that ends at the year `rest[y]`: the words back to the
/// last separator or sentence end, read as `Place : Publisher, Year`
/// (places with their publishers separated by `;`), `Place, Publisher,
/// Year`, `Place, Year` or `Place Year`. `o. O.`, `s.l.` and the like say
/// there is no place.
fn imprint_phrase(rest: &[Tok], y: usize) -> Imprint {
    let mut start = y;
    let mut depth = 0i32;
    while start > 0 && y - start < 12 {
        let t = &rest[start - 1].text;
        // The word just before the year is always part of the place.
        let boundary = start < y && depth == 0 && ends_sentence(t);
        if is_separator(t) || boundary {
            break;
        }
        depth += t.matches([')', ']']).count() as i32 - t.matches(['(', '[']).count() as i32;
        start -= 1;
    }
    if y - start >= 12 {
        return Imprint {
            start: y,
            place: None,
            publisher: None,
        };
    }
    let mut places = Vec::new();
    let mut publishers: Vec<Tok> = Vec::new();
    let mut first_used = None;
    let groups = rest[start..y].split_inclusive(|t| t.text.ends_with(';'));
    let mut offset = start;
    for group in groups {
        let (skip, place, publisher): (usize, Vec<Tok>, Vec<Tok>) =
            if let Some(c) = group.iter().position(|t| t.text.contains(':')) {
                let (before, after) = group[c].text.split_once(':').expect("found above");
                let mut place = group[..c].to_vec();
                place.push(Tok {
                    text: before.to_owned(),
                    ..group[c].clone()
                });
                let mut publisher = vec![Tok {
                    text: after.to_owned(),
                    ..group[c].clone()
                }];
                publisher.extend_from_slice(&group[c + 1..]);
                (0, place, publisher)
            } else if group.last().is_some_and(|t| t.text.ends_with(',')) {
                let c = group
                    .iter()
                    .position(|t| t.text.ends_with(','))
                    .expect("the last one");
                (0, group[..=c].to_vec(), group[c + 1..].to_vec())
            } else {
                // `Place Year`: a clause before a comma is the title's.
                let c = group
                    .iter()
                    .rposition(|t| t.text.ends_with(','))
                    .map_or(0, |c| c + 1);
                (c, group[c..].to_vec(), Vec::new())
            };
        first_used.get_or_insert(offset + skip);
        offset += group.len();
        if let Some(p) = merged(&place) {
            let bare = fold(&p.text).replace(' ', "");
            let none = [
                "oo", "o0", "0o", "00", "sl", "np", "sn", "snl", "ohneort", "sineloco",
            ];
            if !none.contains(&bare.as_str()) {
                places.push(p);
            }
        }
        if let Some(p) = merged(&publisher)
            && !publishers.iter().any(|q| q.text == p.text)
        {
            publishers.push(p);
        }
    }
    let join_all = |toks: Vec<Tok>| {
        let first = toks.first()?.clone();
        let text = toks
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Some(Tok {
            text,
            conf: mean_conf(&toks),
            ..first
        })
    };
    Imprint {
        start: first_used.unwrap_or(y),
        place: join_all(places),
        publisher: join_all(publishers),
    }
}

/// A publisher after the year (`Place Year: Publisher.`), up to the end of
/// its sentence or the extent.
fn publisher_after(rest: &[Tok], y: usize, anchor: Option<usize>) -> Vec<Tok> {
    let year = &rest[y].text;
    let next = rest.get(y + 1);
    let capital = next.is_some_and(|t| t.text.chars().next().is_some_and(char::is_uppercase));
    let opens = year.ends_with(':')
        || next.is_some_and(|t| t.text.starts_with(':'))
        || (!year.ends_with(['.', ',', ')']) && capital);
    if !opens {
        return Vec::new();
    }
    let end = anchor.filter(|&a| a > y).unwrap_or(rest.len()).min(y + 7);
    let mut out = Vec::new();
    for t in &rest[y + 1..end] {
        if is_separator(&t.text) || t.text == ":" {
            if out.is_empty() {
                continue;
            }
            break;
        }
        out.push(t.clone());
        if ends_sentence(&t.text) || t.text.ends_with(',') {
            break;
        }
    }
    out
}

/// The extent of an entry.
struct Extent {
    /// Index of its first count.
    start: usize,
    /// Index after its unit.
    after: usize,
    /// The counts (`X,184`, `24, 2`), without the unit.
    counts: Vec<Tok>,
}

/// The extent: page counts before their unit (`X,184 S.`, `24, 2S.`,
/// `(27 S.)`, `[329 p.]`), or after it (`S. 203-210`).
fn find_extent(rest: &[Tok]) -> Option<Extent> {
    // Counts listed before the one at `i` (`VII, 41`).
    let list_start = |mut s: usize| {
        while s > 0
            && rest[s - 1].text.ends_with(',')
            && is_count(&rest[s - 1].text)
            && year_of(&rest[s - 1].text).1.is_none()
        {
            s -= 1;
        }
        s
    };
    for i in 0..rest.len() {
        let t = rest[i].text.as_str();
        let f = fold(t);
        let next = rest.get(i + 1);
        let closes = next.is_none_or(|n| {
            is_format(&n.text)
                || is_separator(&n.text)
                || n.line != rest[i].line
                || n.text.starts_with(['[', '('])
        });
        let unit = EXTENT_UNITS.contains(&f.as_str())
            && (t.contains(['.', ')', ']', ',']) || f.len() >= 4 || closes);
        // OCR reads a typed `S.` as `5.` or `8.`; only where an extent ends.
        let misread = matches!(
            t.trim_end_matches([')', ']']),
            "5." | "8." | "5," | "8," | "$." | "S$."
        ) && closes;
        if unit || misread {
            if i > 0 && is_count(&rest[i - 1].text) && year_of(&rest[i - 1].text).1.is_none() {
                let s = list_start(i - 1);
                return Some(Extent {
                    start: s,
                    after: i + 1,
                    counts: rest[s..i].to_vec(),
                });
            }
            if unit && next.is_some_and(|n| is_count(&n.text) && n.text.contains('-')) {
                return Some(Extent {
                    start: i + 1,
                    after: i + 2,
                    counts: vec![rest[i + 1].clone()],
                });
            }
        }
        // Count and unit glued: `61S.`, `2S.`, `16p.`.
        let bare = t.trim_start_matches(['(', '[']);
        let n = bare.chars().take_while(char::is_ascii_digit).count();
        let glued_unit = fold(&bare[n..]);
        if n > 0 && t.contains('.') && (glued_unit == "s" || glued_unit == "p") {
            let s = list_start(i);
            let mut counts = rest[s..=i].to_vec();
            let last = counts.last_mut().expect("at least one");
            last.text = bare[..n].to_owned();
            return Some(Extent {
                start: s,
                after: i + 1,
                counts,
            });
        }
    }
    None
}

/// The format: a size token (`8°`, `4'`, `in-8°`), a bare `8` right after
/// the year or the extent, or a height in centimetres (`24 cm`).
fn find_format(rest: &[Tok], extent: Option<&Extent>) -> Option<(usize, Vec<Tok>)> {
    (0..rest.len()).find_map(|i| {
        let t = rest[i].text.as_str();
        if fold(t) == "cm"
            && i > 0
            && (1..=3).contains(&digits(&rest[i - 1].text))
            && letters(&rest[i - 1].text) == 0
        {
            return Some((i - 1, rest[i - 1..=i].to_vec()));
        }
        let bare_number = t
            .trim_end_matches(['.', ','])
            .chars()
            .all(|c| c.is_ascii_digit());
        let placed =
            i > 0 && (year_of(&rest[i - 1].text).0 || extent.is_some_and(|e| e.after == i));
        (is_format(t) && (!bare_number || placed)).then(|| (i, vec![rest[i].clone()]))
    })
}

/// The title words, and the notes that follow them in the title area: a
/// later sentence that opens with a note word (`Diss.`, `Hab.Schr.`, `An
/// abstract of a thesis`), an illustration statement (`Mit 282 Abb.`), or
/// a bracketed addition (`(mit Kart.)`, `[Maschinenschrift.]`).
fn split_notes(area: &[Tok]) -> (&[Tok], &[Tok]) {
    let first_word = |t: &Tok| fold(&t.text).split(' ').next().unwrap_or("").to_owned();
    let note_word = |t: &Tok| NOTE_WORDS.contains(&first_word(t).as_str());
    for i in 1..area.len() {
        let t = &area[i];
        let prev = area[i - 1].text.as_str();
        let sentence = ends_sentence(prev) || prev.ends_with(')');
        let capital = t
            .text
            .trim_start_matches(['(', '['])
            .chars()
            .next()
            .is_some_and(char::is_uppercase);
        let illustrations = ["mit", "avec", "with"].contains(&fold(&t.text).as_str())
            && area.get(i + 1).is_some_and(|n| digits(&n.text) > 0);
        let bracketed_note = t.text.starts_with(['(', '['])
            && (note_word(t) || ILLUSTRATION_WORDS.contains(&first_word(t).as_str()));
        let cut = (sentence
            && (area[i..].iter().take(3).any(note_word) || bracketed_note || illustrations))
            || (capital && area[i - 1].text.ends_with(',') && note_word(t));
        if cut {
            return area.split_at(i);
        }
    }
    (area, &[])
}

/// For each field, the part of `entry` it takes: the part whose concept the
/// field stands for most strongly (by name before description), each part
/// at most once; `taken` fields (filled from labels) are skipped.
pub fn fill<'a>(
    entry: &'a CatalogEntry,
    fields: &[Field],
    taken: &[bool],
) -> Vec<Option<&'a Part>> {
    let mut pairs: Vec<(u32, usize, usize)> = Vec::new();
    for (fi, field) in fields.iter().enumerate() {
        if taken.get(fi).copied().unwrap_or(false) {
            continue;
        }
        for (concept, strength) in field_concepts(field) {
            if let Some(pi) = entry.parts.iter().position(|(k, _)| *k == concept.key) {
                pairs.push((strength, fi, pi));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut out = vec![None; fields.len()];
    let mut used = vec![false; entry.parts.len()];
    for (_, fi, pi) in pairs {
        if out[fi].is_none() && !used[pi] {
            used[pi] = true;
            out[fi] = Some(&entry.parts[pi].1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::tests::line_at;
    use cardex_core::FieldType;

    /// Lines 30 px apart; `|` marks a wide gap, a leading `>` an indent.
    fn card(text: &[&str]) -> CatalogEntry {
        let lines: Vec<OcrLine> = text
            .iter()
            .enumerate()
            .map(|(i, t)| match t.strip_prefix('>') {
                Some(t) => line_at(t, 60, 30 * i as i32),
                None => line_at(t, 0, 30 * i as i32),
            })
            .collect();
        parse(&lines).expect("an entry")
    }

    fn parts(e: &CatalogEntry, keys: &[&str]) -> Vec<Option<String>> {
        keys.iter().map(|k| e.value(k).map(str::to_owned)).collect()
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some((*v).to_owned())).collect()
    }

    #[test]
    fn aacr_entry_with_area_separators() {
        let e = card(&[
            "Mootz, Inge. Die Alpen im Winter. Diss. Bern.",
            "-- Zürich : Orell Füssli, 1971. -- xii, 300 p. ; 24 cm.",
            "Standort: Diss. 1972, 44",
        ]);
        assert_eq!(
            parts(
                &e,
                &[
                    "author",
                    "title",
                    "place",
                    "publisher",
                    "year",
                    "extent",
                    "shelfmark"
                ]
            ),
            some(&[
                "Mootz, Inge",
                "Die Alpen im Winter",
                "Zürich",
                "Orell Füssli",
                "1971",
                "xii, 300",
                "Diss. 1972, 44"
            ])
        );
        assert!(
            e.value("notes")
                .is_some_and(|n| n.starts_with("Diss. Bern"))
        );
    }

    #[test]
    fn letter_spaced_heading() {
        let e = card(&["M o o t z - Spurk, Inge Marie. Gedichte. -- Bern 1950. -- 61 S."]);
        assert_eq!(e.value("author"), Some("Mootz-Spurk, Inge Marie"));
        let e = card(&["D e l e r e , Otto. Ethik.-- Bochum:1939.--"]);
        assert_eq!(
            parts(&e, &["author", "title", "place", "year"]),
            some(&["Delere, Otto", "Ethik", "Bochum", "1939"])
        );
    }

    #[test]
    fn prussian_entry_place_year_publisher() {
        let e = card(&[
            "Weber, Kurt, Referendar: Die Verhältnisse des Kreises. Marburg",
            "1913: R. Schaaf. 93 S. 8°",
            "Würzburg, Jur. Diss. v. 23. Dez. 1914",
            "DN:B 1938, 13",
        ]);
        assert_eq!(
            parts(
                &e,
                &[
                    "author",
                    "title",
                    "place",
                    "publisher",
                    "year",
                    "extent",
                    "format",
                    "shelfmark"
                ]
            ),
            some(&[
                "Weber, Kurt",
                "Die Verhältnisse des Kreises",
                "Marburg",
                "R. Schaaf",
                "1913",
                "93",
                "8°",
                "DN:B 1938, 13"
            ])
        );
    }

    #[test]
    fn imprint_forms() {
        let place_year = |line: &str| {
            let e = card(&[line]);
            (
                e.value("place").map(str::to_owned),
                e.value("publisher").map(str::to_owned),
                e.value("year").map(str::to_owned),
            )
        };
        let s = |v: &str| Some(v.to_owned());
        // French: `— Place, Year, in-8°`; and with a printer.
        assert_eq!(
            place_year("DUPONT, Jean. — Les eaux. — Lyon, 1916, in-8° (88 p.)."),
            (s("Lyon"), None, s("1916"))
        );
        assert_eq!(
            place_year("Roux, Paul: Les eaux. Lausanne, Imprimerie Vaudoise, 1910. 24 p. 8°"),
            (s("Lausanne"), s("Imprimerie Vaudoise"), s("1910"))
        );
        // Dissertation imprint, a bracketed place, a qualified place.
        assert_eq!(
            place_year("Nagel, Max: Über Eis. Diss. Kiel 1902. 27 S."),
            (s("Kiel"), None, s("1902"))
        );
        assert_eq!(
            place_year("Nagel, Max: Eis. (Paderborn) 1936: (Heydeck). 49 S. 8°"),
            (s("Paderborn"), s("Heydeck"), s("1936"))
        );
        assert_eq!(
            place_year("Nagel, Max: Eis. Freiburg i. B. 1912: Wagner. 34 S. 8°").0,
            s("Freiburg i. B.")
        );
        assert_eq!(
            place_year("Nagel, Max: Eis. — Marburg (Lahn) 1936: Hamel. 80 S.").0,
            s("Marburg (Lahn)")
        );
        // Several places; no place (`o. O.`, `s.l.`); OCR'd year digits.
        assert_eq!(
            place_year("Roth, Eva. Recht. -- Bern: Lang; Frankfurt/M.: Lang 1972. -- 225 S.").0,
            s("Bern; Frankfurt/M")
        );
        assert_eq!(
            place_year("Roth, Eva: Recht. o. O. [1932]. 62 S. 8°"),
            (None, None, s("1932"))
        );
        assert_eq!(
            place_year("Roth, Eva. Law. -- s.l., 1932. -- 62 p.").0,
            None
        );
        assert_eq!(
            place_year("Roth, Eva: Recht. Borna-Leipzig tg10: Noske. 41 S. 8°").2,
            s("1910")
        );
    }

    /// Part `part` of an entry whose imprint is followed by `tail`.
    fn after_the_imprint(tail: &str, part: &str) -> Option<String> {
        card(&[&format!("Roth, Eva. Recht. -- Bern 1950. -- {tail}")])
            .value(part)
            .map(str::to_owned)
    }

    #[test]
    fn extent_forms() {
        let extent = |tail: &str| after_the_imprint(tail, "extent");
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(extent("61 S."), s("61"));
        assert_eq!(extent("xii, 300 p. ; 24 cm"), s("xii, 300"));
        assert_eq!(extent("103 p."), s("103"));
        assert_eq!(extent("8' XI,332 S."), s("XI,332"));
        assert_eq!(extent("24, 2S. 4°"), s("24, 2"));
        assert_eq!(extent("(27 S.) 4°"), s("27"));
        assert_eq!(extent("8' S.203-210."), s("203-210"));
        assert_eq!(extent("8' 89 5,"), s("89"), "OCR's 5 for S at the end");
        assert_eq!(extent("8°"), None);
    }

    #[test]
    fn format_forms() {
        let format = |tail: &str| after_the_imprint(tail, "format");
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(format("8° 61 S."), s("8°"));
        assert_eq!(format("4' X,184 S."), s("4'"));
        assert_eq!(format("in-8° (88 p.)"), s("in-8°"));
        assert_eq!(format("61 S. 8:o"), s("8:o"));
        assert_eq!(format("61 S."), None);
    }

    #[test]
    fn shelfmark_in_a_corner_or_on_a_line() {
        let e = card(&[
            "Roth, Eva: Recht. Bern 1936: Hamel. 80 S. 8°",
            "Bern, Diss. v. 1936 | [U 36. 7342",
        ]);
        assert_eq!(e.value("shelfmark"), Some("U 36. 7342"));
        let e = card(&[
            "PS3515 | Hemingway, Ernest, 1899-1961.",
            ".E37 | The sun also rises. -- New York : Scribner, 1926.",
            "S8 | 259 p. ; 20 cm.",
        ]);
        assert_eq!(
            parts(&e, &["shelfmark", "author", "title", "place"]),
            some(&[
                "PS3515 .E37 S8",
                "Hemingway, Ernest",
                "The sun also rises",
                "New York"
            ])
        );
        let e = card(&["Roth, Eva. Recht. -- Bern 1950.", "Signatur: AT 7"]);
        assert_eq!(e.value("shelfmark"), Some("AT 7"));
        let e = card(&["Roth, Eva. Recht. -- Bern 1950.", "Call no.: QA76 .S5"]);
        assert_eq!(e.value("shelfmark"), Some("QA76 .S5"));
    }

    #[test]
    fn surnames_broken_by_ocr_are_joined_and_forms_of_address_dropped() {
        let author = |line: &str| card(&[line]).value("author").map(str::to_owned);
        assert_eq!(
            author("Os te r1oh, Detlev. Zur Frage. -- Bonn 1970."),
            Some("Osterloh, Detlev".into())
        );
        assert_eq!(
            author("Rutger s van der Loeff, Michael. Recht. -- Bonn 1970."),
            Some("Rutgers van der Loeff, Michael".into())
        );
        assert_eq!(
            author("54. Volodarsky, Mademoiselle: Injections. Lausanne 1910."),
            Some("Volodarsky".into())
        );
        assert_eq!(
            author("SELLES (Manuel). — Recht. — Alger, 1945."),
            Some("SELLES, Manuel".into())
        );
    }

    #[test]
    fn notes_before_and_after_the_title_are_kept_out_of_it() {
        let title = |line: &str| card(&[line]).value("title").map(str::to_owned);
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            title(
                "Roth, Eva: Aus d. chir. Klinik d. Univ. Bonn. Dir.: Kurt Mai. Über Eis. Bonn 1917: Abel. 31 S."
            ),
            s("Über Eis")
        );
        assert_eq!(
            title("Roth, Eva. Über Eis. (mit Kart.) Diss. Bonn. -- Bonn 1917."),
            s("Über Eis")
        );
        assert_eq!(
            title("Roth, Eva. Das Eis, (Ausz.) -- Bonn 1917."),
            s("Das Eis")
        );
        assert_eq!(
            title("Roth, Eva. Eis. Mit 282 Abb. -- Bonn 1917."),
            s("Eis")
        );
        assert_eq!(
            title(
                "Roth, Eva. Eis. Mit besonderer Berücksichtigung des Schnees. (Ein Beitrag zur Lehre.) -- Bonn 1917."
            ),
            s("Eis. Mit besonderer Berücksichtigung des Schnees. (Ein Beitrag zur Lehre.)"),
            "a subtitle stays"
        );
        assert_eq!(
            title("Roth, Eva. Eis. An abstract of a thesis. -- Bonn 1917."),
            s("Eis")
        );
    }

    #[test]
    fn a_shelfmark_label_whose_colon_was_read_as_a_letter() {
        let e = card(&[
            "Roth, Eva. Recht. -- Bern 1950.",
            "Standorts Diss.1970,6462",
        ]);
        assert_eq!(e.value("shelfmark"), Some("Diss.1970,6462"));
    }

    #[test]
    fn reference_cards_read_the_entry_after_see() {
        let e = card(&[
            "| :",
            "Morgan, Charles | 1894-",
            "[ biogr.]",
            "Se",
            "Delere, Otto. Ethik. -- Bochum 1939.",
            "Diss.Bonn 1939",
        ]);
        assert_eq!(
            parts(&e, &["author", "title", "place", "shelfmark"]),
            some(&["Delere, Otto", "Ethik", "Bochum", "Diss.Bonn 1939"])
        );
    }

    #[test]
    fn parts_fill_fields_by_name_synonym_and_description() {
        let e = card(&["Roth, Eva. Recht. -- Bern 1950. -- 61 S.", "Standort: AT 7"]);
        let fields = vec![
            Field::new("verfasser", FieldType::Text),
            Field::new("date", FieldType::Text),
            Field::new("call_number", FieldType::Text),
            Field::new("umfang", FieldType::Text),
            Field::new("where", FieldType::Text).describe("the place of publication"),
            Field::new("colour", FieldType::Text),
        ];
        let got: Vec<Option<&str>> = fill(&e, &fields, &[])
            .into_iter()
            .map(|p| p.map(|p| p.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                Some("Roth, Eva"),
                Some("1950"),
                Some("AT 7"),
                Some("61"),
                Some("Bern"),
                None
            ]
        );
        let taken = fill(&e, &fields, &[true]);
        assert!(taken[0].is_none(), "fields read from labels are left alone");
    }
}
