//! Batch names: `<custom>_<YYYY-MM-DD_HH-MM-SS>_<id>` (DESIGN §2).
//!
//! The custom part is what the user typed, made safe for every filesystem:
//! transliterated to ASCII, only letters, digits and `-`, 1–64 characters.
//! The full name is used as a directory name, so it must never contain a
//! path separator, `..`, or anything a shell or archive tool would trip on.
//!
//! Uploaded files keep the name the client sent only for display and
//! export ([`check_file_name`]); on disk they get names the server makes.

use rand::Rng;
use time::OffsetDateTime;
use time::macros::format_description;

/// The longest custom part kept; longer input is cut.
pub const MAX_CUSTOM_LEN: usize = 64;
/// Longest uploaded file name kept, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// Length of the random batch id.
pub const ID_LEN: usize = 8;
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing usable remained after removing unsafe characters.
    #[error("the batch name must contain at least one letter or digit")]
    Empty,
}

/// A batch's full name and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchName {
    /// The sanitised user part.
    pub custom: String,
    /// The short random id, also the batch's id in the API.
    pub id: String,
    /// `<custom>_<timestamp>_<id>`.
    pub full: String,
}

impl BatchName {
    /// Builds a name from user input, a creation time and an id.
    pub fn new(user_input: &str, created: OffsetDateTime, id: &str) -> Result<Self, NameError> {
        let custom = sanitize_custom(user_input)?;
        let stamp = created
            .to_offset(time::UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day]_[hour]-[minute]-[second]"
            ))
            .expect("a fixed format always formats a valid date");
        let full = format!("{custom}_{stamp}_{id}");
        Ok(Self {
            custom,
            id: id.to_owned(),
            full,
        })
    }
}

/// Makes a user-typed name filesystem-safe: ASCII letters, digits and `-`;
/// whitespace, `_`, `.`, `/` and other separators become `-`, runs of `-` are
/// collapsed and trimmed, the result is cut to 64 characters.
pub fn sanitize_custom(input: &str) -> Result<String, NameError> {
    let ascii = deunicode::deunicode(input);
    let mut out = String::with_capacity(ascii.len().min(MAX_CUSTOM_LEN));
    for c in ascii.chars() {
        if out.len() == MAX_CUSTOM_LEN {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if (c.is_ascii_whitespace() || c.is_ascii_punctuation()) && !out.ends_with('-') {
            // Separators become one dash; other characters (controls) vanish.
            if !out.is_empty() {
                out.push('-');
            }
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        return Err(NameError::Empty);
    }
    Ok(out)
}

/// Checks an uploaded file's name as the client sent it. It is only ever
/// shown and exported, never used as a path (stored files get names the
/// server makes), but names that would mislead people (folders,
/// control or direction-override characters) are refused outright.
pub fn check_file_name(name: Option<&str>) -> Result<String, String> {
    let name = match name {
        None | Some("") => return Ok("unnamed".to_owned()),
        Some(n) => n,
    };
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(format!(
            "the file name is longer than {MAX_FILE_NAME_BYTES} bytes"
        ));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err("the file name must be a plain name, without folders or '..'".into());
    }
    let misleading = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if name.chars().any(misleading) {
        return Err("the file name contains control or text-direction characters".into());
    }
    Ok(name.to_owned())
}

/// A new random id: 8 characters of lowercase base32.
pub fn new_id() -> String {
    let mut rng = rand::rng();
    (0..ID_LEN)
        .map(|_| BASE32[rng.random_range(0..BASE32.len())] as char)
        .collect()
}

/// Whether `s` has the shape of an id made by [`new_id`]; used to refuse
/// path parameters that could never name a batch.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| BASE32.contains(&b))
}

/// Most bytes an OCR language setting may have (`deu+eng+fra…`).
pub const MAX_OCR_LANG_LEN: usize = 64;

/// Whether `lang` is Tesseract language codes: 3–16 of `a-z` and `_` each
/// (`eng`, `chi_sim`, `deu_latf`), up to eight joined by `+`, at most
/// [`MAX_OCR_LANG_LEN`] bytes in all.
pub fn is_ocr_lang(lang: &str) -> bool {
    let parts: Vec<&str> = lang.split('+').collect();
    lang.len() <= MAX_OCR_LANG_LEN
        && parts.len() <= 8
        && parts.iter().all(|p| {
            (3..=16).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn custom(s: &str) -> Result<String, NameError> {
        sanitize_custom(s)
    }

    #[test]
    fn full_name_has_the_documented_shape() {
        let n = BatchName::new(
            "Hemingway Letters",
            datetime!(2026-11-24 14:03:22 UTC),
            "k3v9q2xa",
        )
        .unwrap();
        assert_eq!(n.full, "Hemingway-Letters_2026-11-24_14-03-22_k3v9q2xa");
        assert_eq!(n.custom, "Hemingway-Letters");
    }

    #[test]
    fn timestamp_is_utc_whatever_the_offset() {
        let n = BatchName::new("a", datetime!(2026-11-24 16:03:22 +02:00), "aaaaaaaa").unwrap();
        assert_eq!(n.full, "a_2026-11-24_14-03-22_aaaaaaaa");
    }

    #[test]
    fn spaces_and_separators_become_single_dashes() {
        assert_eq!(custom("  box   12  ").unwrap(), "box-12");
        assert_eq!(custom("a_b.c,d").unwrap(), "a-b-c-d");
        assert_eq!(custom("a - b").unwrap(), "a-b");
    }

    #[test]
    fn path_tricks_are_neutralised() {
        assert_eq!(custom("../../etc/passwd").unwrap(), "etc-passwd");
        assert_eq!(custom("a/b\\c").unwrap(), "a-b-c");
        assert_eq!(custom("..").unwrap_err(), NameError::Empty);
        assert_eq!(custom("nul\0byte").unwrap(), "nulbyte");
    }

    #[test]
    fn unicode_is_transliterated_to_ascii() {
        assert_eq!(custom("Gödel Briefe").unwrap(), "Godel-Briefe");
        assert_eq!(custom("Café Noël").unwrap(), "Cafe-Noel");
        let kanji = custom("東京").unwrap();
        assert!(
            kanji
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
        assert!(!kanji.is_empty());
        // Right-to-left override and other format characters vanish.
        assert_eq!(custom("abc\u{202e}def").unwrap(), "abcdef");
    }

    #[test]
    fn empty_or_symbol_only_names_are_refused() {
        for bad in ["", "   ", "---", "///", "_", "\u{202e}"] {
            assert_eq!(custom(bad), Err(NameError::Empty), "{bad:?}");
        }
    }

    #[test]
    fn over_long_names_are_cut_to_64() {
        let long = "x".repeat(500);
        assert_eq!(custom(&long).unwrap().len(), MAX_CUSTOM_LEN);
        // A cut never leaves a trailing dash.
        let dashy = format!("{} tail", "y".repeat(63));
        assert_eq!(custom(&dashy).unwrap(), "y".repeat(63));
    }

    #[test]
    fn ids_are_lowercase_base32() {
        for _ in 0..100 {
            let id = new_id();
            assert!(is_valid_id(&id), "{id}");
        }
        assert!(!is_valid_id("ABCDEFGH"));
        assert!(!is_valid_id("../x"));
        assert!(!is_valid_id("abcdefg1"));
    }

    #[test]
    fn plain_names_are_kept_as_sent() {
        assert_eq!(check_file_name(Some("card 01.jpg")).unwrap(), "card 01.jpg");
        assert_eq!(
            check_file_name(Some("Kärtchen №3.png")).unwrap(),
            "Kärtchen №3.png"
        );
        assert_eq!(check_file_name(None).unwrap(), "unnamed");
    }

    #[test]
    fn misleading_names_are_refused() {
        for bad in [
            "../etc/passwd",
            "..\\win.ini",
            "a/b.jpg",
            "..",
            "nul\0.jpg",
            "tab\there.jpg",
            "invoice\u{202e}gpj.exe",
            &"x".repeat(256),
        ] {
            assert!(check_file_name(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(check_file_name(Some(&"x".repeat(255))).is_ok());
    }
}
