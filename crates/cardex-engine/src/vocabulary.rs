//! What the words on a card's labels mean: concepts with the names people
//! give them in English, German and French, taken from the standards the
//! cards follow rather than from any one set of cards — Darwin Core terms
//! for specimen labels, MARC / ISBD element names for catalog cards, vCard
//! properties for business cards. [`crate::labels`] matches labels against
//! these terms and fields against the concepts.
//!
//! Terms are written as [`fold`] leaves them: lower case, no accents, words
//! separated by single spaces.

/// A thing a label or field can mean, and the names it goes by.
#[derive(Debug)]
pub struct Concept {
    /// Stable name of the concept (the standard's element, roughly).
    pub key: &'static str,
    /// Names and abbreviations for it, folded.
    pub terms: &'static [&'static str],
}

/// Every concept. A term may belong to more than one (`place` is a
/// specimen's locality and a book's place of publication); the field
/// decides which is meant.
pub const CONCEPTS: &[Concept] = &[
    // Darwin Core (specimen labels).
    Concept {
        key: "scientific_name",
        terms: &[
            "scientific name",
            "species",
            "taxon",
            "sp",
            "art",
            "espece",
            "nom scientifique",
            "determination",
        ],
    },
    Concept {
        key: "recorded_by",
        terms: &[
            "collector",
            "collected by",
            "coll",
            "leg",
            "legit",
            "gatherer",
            "recorded by",
            "sammler",
            "gesammelt von",
            "recolteur",
            "collecteur",
            "recolte par",
        ],
    },
    Concept {
        key: "identified_by",
        terms: &[
            "identified by",
            "determined by",
            "det",
            "determinavit",
            "bestimmt",
            "bestimmt von",
            "determine par",
        ],
    },
    Concept {
        key: "event_date",
        terms: &[
            "date",
            "collected",
            "collection date",
            "event date",
            "dated",
            "when",
            "datum",
            "sammeldatum",
            "date de recolte",
        ],
    },
    Concept {
        key: "locality",
        terms: &[
            "locality",
            "location",
            "loc",
            "locale",
            "place",
            "site",
            "fundort",
            "lokalitat",
            "ort",
            "lieu",
            "localite",
            "station",
        ],
    },
    Concept {
        key: "habitat",
        terms: &["habitat", "lebensraum", "biotop", "biotope", "milieu"],
    },
    Concept {
        key: "country",
        terms: &["country", "land", "pays", "staat"],
    },
    Concept {
        key: "state_province",
        terms: &["state", "province", "region", "canton", "kanton"],
    },
    Concept {
        key: "elevation",
        terms: &["elevation", "altitude", "alt", "elev", "hohe", "meereshohe"],
    },
    Concept {
        key: "coordinates",
        terms: &[
            "coordinates",
            "latitude",
            "longitude",
            "lat",
            "long",
            "koordinaten",
            "coordonnees",
        ],
    },
    Concept {
        key: "catalog_number",
        terms: &[
            "catalog number",
            "catalogue number",
            "cat no",
            "specimen number",
            "accession number",
            "acc no",
            "number",
            "no",
            "nr",
            "nummer",
            "numero",
        ],
    },
    Concept {
        key: "family",
        terms: &["family", "fam", "familie", "famille"],
    },
    Concept {
        key: "genus",
        terms: &["genus", "gattung", "genre"],
    },
    // MARC / ISBD (catalog cards).
    Concept {
        key: "author",
        terms: &[
            "author",
            "authors",
            "by",
            "writer",
            "written by",
            "creator",
            "main entry",
            "verfasser",
            "verf",
            "autor",
            "auteur",
        ],
    },
    Concept {
        key: "title",
        terms: &[
            "title",
            "title proper",
            "book",
            "titel",
            "sachtitel",
            "titre",
        ],
    },
    Concept {
        key: "edition",
        terms: &["edition", "ed", "auflage", "aufl", "ausgabe"],
    },
    Concept {
        key: "place",
        terms: &[
            "place",
            "place of publication",
            "publication place",
            "published at",
            "ort",
            "verlagsort",
            "erscheinungsort",
            "druckort",
            "lieu",
            "lieu de publication",
            "lieu d edition",
        ],
    },
    Concept {
        key: "publisher",
        terms: &[
            "publisher",
            "published by",
            "imprint",
            "printer",
            "verlag",
            "verleger",
            "drucker",
            "editeur",
            "imprimeur",
        ],
    },
    Concept {
        key: "year",
        terms: &[
            "year",
            "date",
            "published",
            "publication year",
            "pub year",
            "date of publication",
            "publication date",
            "dated",
            "jahr",
            "erscheinungsjahr",
            "datum",
            "annee",
        ],
    },
    Concept {
        key: "extent",
        terms: &[
            "pages",
            "extent",
            "pagination",
            "collation",
            "pp",
            "leaves",
            "seiten",
            "umfang",
            "seitenzahl",
            "nombre de pages",
        ],
    },
    Concept {
        key: "format",
        terms: &["format", "size", "dimensions", "grosse", "taille"],
    },
    Concept {
        key: "series",
        terms: &["series", "reihe", "serie"],
    },
    Concept {
        key: "notes",
        terms: &[
            "notes",
            "note",
            "remarks",
            "remark",
            "comments",
            "bemerkung",
            "bemerkungen",
            "anmerkung",
            "anmerkungen",
            "remarque",
            "remarques",
            "obs",
        ],
    },
    Concept {
        key: "shelfmark",
        terms: &[
            "call number",
            "call no",
            "call",
            "shelfmark",
            "shelf mark",
            "shelf number",
            "shelf",
            "classmark",
            "pressmark",
            "signature",
            "signatur",
            "standort",
            "sig",
            "cote",
        ],
    },
    Concept {
        key: "isbn",
        terms: &["isbn", "issn"],
    },
    Concept {
        key: "subject",
        terms: &[
            "subject",
            "subjects",
            "subject heading",
            "schlagwort",
            "schlagworte",
            "sujet",
        ],
    },
    Concept {
        key: "language",
        terms: &["language", "lang", "sprache", "langue"],
    },
    // vCard (business cards).
    Concept {
        key: "full_name",
        terms: &[
            "name",
            "full name",
            "fn",
            "contact",
            "contact person",
            "person",
            "ansprechpartner",
            "nom",
        ],
    },
    Concept {
        key: "organization",
        terms: &[
            "company",
            "firm",
            "organisation",
            "organization",
            "org",
            "employer",
            "business",
            "firma",
            "unternehmen",
            "societe",
            "entreprise",
        ],
    },
    Concept {
        key: "job_title",
        terms: &[
            "job title",
            "position",
            "role",
            "function",
            "funktion",
            "fonction",
            "beruf",
        ],
    },
    Concept {
        key: "phone",
        terms: &[
            "phone",
            "telephone",
            "tel",
            "mobile",
            "cell",
            "fax",
            "ph",
            "telefon",
            "mobil",
            "handy",
            "portable",
        ],
    },
    Concept {
        key: "email",
        terms: &["email", "e mail", "mail", "courriel"],
    },
    Concept {
        key: "address",
        terms: &[
            "address",
            "addr",
            "adr",
            "street",
            "adresse",
            "anschrift",
            "strasse",
            "rue",
        ],
    },
    Concept {
        key: "city",
        terms: &["city", "town", "stadt", "ort", "ville"],
    },
    Concept {
        key: "postal_code",
        terms: &[
            "zip",
            "zip code",
            "postcode",
            "postal code",
            "plz",
            "code postal",
        ],
    },
    Concept {
        key: "website",
        terms: &["website", "web", "url", "www", "homepage", "internet"],
    },
];

/// Lower case, accents dropped, anything but letters and digits a space,
/// spaces collapsed: the form terms and labels are compared in.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            c if c.is_alphanumeric() => c,
            _ => ' ',
        };
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Levenshtein distance, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Edits an OCR'd label may carry and still count as `term`: none for
/// short words (where one letter makes another word), one from five
/// letters, two from nine.
pub fn close_enough(label: &str, term: &str) -> bool {
    let allowed = match term.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    };
    allowed > 0 && edit_distance(label, term) <= allowed
}

/// Whether `short` abbreviates `long` word by word (`coll` → `collector`,
/// `call no` → `call number`).
pub fn abbreviates(short: &str, long: &str) -> bool {
    let s: Vec<&str> = short.split(' ').collect();
    let l: Vec<&str> = long.split(' ').collect();
    short != long
        && s.len() == l.len()
        && s.iter()
            .zip(&l)
            .all(|(a, b)| a.len() >= 2 && b.starts_with(a))
}

/// How well a folded label names a term: 3 exactly, 2 as an abbreviation,
/// 1 with a few OCR errors, 0 not at all.
pub fn term_match(label: &str, term: &str) -> u32 {
    if label == term {
        3
    } else if abbreviates(label, term) {
        2
    } else if close_enough(label, term) {
        1
    } else {
        0
    }
}

/// The concepts a folded label may mean, with [`term_match`]'s strength.
pub fn concepts_of_label(label: &str) -> Vec<(&'static Concept, u32)> {
    CONCEPTS
        .iter()
        .filter_map(|c| {
            let best = c.terms.iter().map(|t| term_match(label, t)).max()?;
            (best > 0).then_some((c, best))
        })
        .collect()
}

/// Whether `phrase` occurs in `text` as whole words (both folded), so
/// `age` is not found in `image`.
pub fn has_words(text: &str, phrase: &str) -> bool {
    !phrase.is_empty() && format!(" {text} ").contains(&format!(" {phrase} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_drops_case_accents_and_punctuation() {
        assert_eq!(fold("Localité:"), "localite");
        assert_eq!(fold("Straße / Nr."), "strasse nr");
        assert_eq!(fold("  E-Mail "), "e mail");
    }

    #[test]
    fn terms_are_matched_exactly_by_abbreviation_or_with_few_errors() {
        assert_eq!(term_match("tel", "telephone"), 2);
        assert_eq!(term_match("collecter", "collector"), 1);
        assert_eq!(
            term_match("tal", "tel"),
            0,
            "short words must match exactly"
        );
        assert!(
            concepts_of_label("verfasser")
                .iter()
                .any(|(c, _)| c.key == "author")
        );
        assert!(
            concepts_of_label("fundort")
                .iter()
                .any(|(c, _)| c.key == "locality")
        );
        assert!(!has_words("an image of the card", "age"));
        assert!(has_words("the age of the tree", "age"));
    }

    #[test]
    fn every_term_is_folded() {
        for c in CONCEPTS {
            for t in c.terms {
                assert_eq!(&fold(t), t, "{}", c.key);
            }
        }
    }
}
