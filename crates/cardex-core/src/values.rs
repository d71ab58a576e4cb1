//! Reading values the way people write them on cards: numbers with
//! thousands separators or a decimal comma (`1,952`, `3,50`, `1.234,5`),
//! and dates in the usual written forms (`12 March 1931`, `12.3.1931`,
//! `12.III.1931`), turned into ISO 8601. Only what can be read one way is
//! read; anything that could mean two things is left to a person
//! ([`NumberReading::Ambiguous`], `None` for a date), never guessed.

/// What a written number says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberReading {
    /// One clear value.
    Value(f64),
    /// Two readings are possible (`1,234`: a thousand and more, or one
    /// and a bit).
    Ambiguous,
    /// Not a number at all.
    NotANumber,
}

/// Reads a written number. `whole` says the field holds whole numbers,
/// which settles `1,952` (a thousands separator: 1.952 is no whole number).
pub fn read_number(text: &str, whole: bool) -> NumberReading {
    let s: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '_' | '\''))
        .collect();
    let (sign, digits) = match s.strip_prefix('-').or_else(|| s.strip_prefix('−')) {
        Some(rest) => ("-", rest),
        None => ("", s.strip_prefix('+').unwrap_or(&s)),
    };
    if digits.is_empty()
        || !digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        // Exponents and the like: let Rust's own reading decide.
        return match s.parse::<f64>() {
            Ok(v) if v.is_finite() => NumberReading::Value(v),
            _ => NumberReading::NotANumber,
        };
    }
    let commas = digits.matches(',').count();
    let dots = digits.matches('.').count();
    let plain = match (commas, dots) {
        (0, 0) => Some(digits.to_owned()),
        // Both: the last one is the decimal mark, the other groups thousands.
        (1.., 1..) => {
            let (group, decimal) = if digits.rfind(',') > digits.rfind('.') {
                ('.', ',')
            } else {
                (',', '.')
            };
            let (int, frac) = digits.rsplit_once(decimal).expect("it occurs");
            (frac.chars().all(|c| c.is_ascii_digit()) && grouped(int, group))
                .then(|| format!("{}.{frac}", int.replace(group, "")))
        }
        (n, 0) | (0, n) => {
            let mark = if commas > 0 { ',' } else { '.' };
            let (int, frac) = digits.rsplit_once(mark).expect("it occurs");
            if n > 1 {
                // Several marks can only group thousands.
                grouped(digits, mark).then(|| digits.replace(mark, ""))
            } else if frac.len() == 3 && (1..=3).contains(&int.len()) && !int.starts_with('0') {
                // `1,234` / `1.234`: thousands, or a decimal with three places.
                if whole {
                    Some(format!("{int}{frac}"))
                } else if mark == '.' {
                    // A decimal point is what most numbers written like this mean.
                    Some(digits.to_owned())
                } else {
                    return NumberReading::Ambiguous;
                }
            } else {
                Some(format!("{int}.{frac}"))
            }
        }
    };
    match plain.and_then(|p| format!("{sign}{p}").parse::<f64>().ok()) {
        Some(v) if v.is_finite() => NumberReading::Value(v),
        _ => NumberReading::NotANumber,
    }
}

/// Whether `s` is digits grouped in threes by `mark` (`1,234,567`).
fn grouped(s: &str, mark: char) -> bool {
    let mut parts = s.split(mark);
    let first = parts.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_digit())
        && parts.all(|p| p.len() == 3 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Month names and abbreviations in English, German and French, and the
/// Roman numerals specimen labels use, by month number.
const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("januar", 1),
    ("jänner", 1),
    ("janvier", 1),
    ("janv", 1),
    ("february", 2),
    ("feb", 2),
    ("februar", 2),
    ("février", 2),
    ("fevrier", 2),
    ("févr", 2),
    ("fev", 2),
    ("march", 3),
    ("mar", 3),
    ("märz", 3),
    ("marz", 3),
    ("mars", 3),
    ("mär", 3),
    ("april", 4),
    ("apr", 4),
    ("avril", 4),
    ("avr", 4),
    ("may", 5),
    ("mai", 5),
    ("june", 6),
    ("jun", 6),
    ("juni", 6),
    ("juin", 6),
    ("july", 7),
    ("jul", 7),
    ("juli", 7),
    ("juillet", 7),
    ("juil", 7),
    ("august", 8),
    ("aug", 8),
    ("août", 8),
    ("aout", 8),
    ("september", 9),
    ("sep", 9),
    ("sept", 9),
    ("septembre", 9),
    ("october", 10),
    ("oct", 10),
    ("oktober", 10),
    ("okt", 10),
    ("octobre", 10),
    ("november", 11),
    ("nov", 11),
    ("novembre", 11),
    ("december", 12),
    ("dec", 12),
    ("dezember", 12),
    ("dez", 12),
    ("décembre", 12),
    ("decembre", 12),
    ("déc", 12),
    ("i", 1),
    ("ii", 2),
    ("iii", 3),
    ("iv", 4),
    ("v", 5),
    ("vi", 6),
    ("vii", 7),
    ("viii", 8),
    ("ix", 9),
    ("x", 10),
    ("xi", 11),
    ("xii", 12),
];

fn month(word: &str) -> Option<u32> {
    let w = word.trim_end_matches('.').to_lowercase();
    MONTHS.iter().find(|(name, _)| *name == w).map(|(_, n)| *n)
}

/// Days in `month` of `year` (proleptic Gregorian).
fn days_in(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn iso(year: i32, month: Option<u32>, day: Option<u32>) -> Option<String> {
    if !(1..=9999).contains(&year) {
        return None;
    }
    match (month, day) {
        (None, _) => Some(format!("{year:04}")),
        (Some(m), None) if (1..=12).contains(&m) => Some(format!("{year:04}-{m:02}")),
        (Some(m), Some(d)) if (1..=12).contains(&m) && (1..=days_in(year, m)).contains(&d) => {
            Some(format!("{year:04}-{m:02}-{d:02}"))
        }
        _ => None,
    }
}

/// A written date as ISO 8601 (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`), when it
/// can be read only one way; `None` otherwise (`3/4/1931` could be March
/// or April, `'31` could be any century).
pub fn read_date(text: &str) -> Option<String> {
    let s = text.trim().trim_end_matches('.');
    let words: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '/' | '-' | '.'))
        .filter(|w| !w.is_empty())
        .collect();
    let number = |w: &str| {
        w.parse::<u32>()
            .ok()
            .filter(|_| w.chars().all(|c| c.is_ascii_digit()))
    };
    let year = |w: &str| {
        (w.len() == 4)
            .then(|| number(w))
            .flatten()
            .map(|y| y as i32)
    };
    match words.as_slice() {
        [y] => iso(year(y)?, None, None),
        // ISO order: 1931-03-12, 1931-3, 1931/03/12.
        [y, m] if year(y).is_some() => iso(year(y)?, number(m).or_else(|| month(m)), None),
        [y, m, d] if year(y).is_some() => iso(
            year(y)?,
            Some(number(m).or_else(|| month(m))?),
            Some(number(d)?),
        ),
        // March 1931, 1931 März is above; III.1931.
        [m, y] => iso(year(y)?, Some(month(m).or_else(|| number(m))?), None),
        // 12 March 1931, 12.III.1931, March 12 1931, 12.3.1931, 25/12/1931.
        [a, b, y] => {
            let y = year(y)?;
            if let Some(m) = month(b).filter(|_| number(b).is_none()) {
                return iso(y, Some(m), Some(number(a)?));
            }
            if let Some(m) = month(a).filter(|_| number(a).is_none()) {
                return iso(y, Some(m), Some(number(b)?));
            }
            let (a, b) = (number(a)?, number(b)?);
            let dotted = s.contains('.') && !s.contains('/');
            if dotted {
                // Day first wherever dates are written with dots.
                iso(y, Some(b), Some(a))
            } else if a > 12 && b <= 12 {
                iso(y, Some(b), Some(a))
            } else if b > 12 && a <= 12 {
                iso(y, Some(a), Some(b))
            } else if a == b {
                iso(y, Some(a), Some(a))
            } else {
                None // 3/4/1931: March or April
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumberReading::{Ambiguous, NotANumber, Value};

    #[test]
    fn numbers_as_people_write_them() {
        for (text, whole, want) in [
            ("3,50", false, Value(3.5)),
            ("3,5", false, Value(3.5)),
            ("1.234,5", false, Value(1234.5)),
            ("1,234.5", false, Value(1234.5)),
            ("1.234.567", false, Value(1_234_567.0)),
            ("1,234,567", true, Value(1_234_567.0)),
            ("1 000", false, Value(1000.0)),
            ("1'234.50", false, Value(1234.5)),
            ("-2,25", false, Value(-2.25)),
            ("3.50", false, Value(3.5)),
            ("1,952", true, Value(1952.0)),
            ("1.952", true, Value(1952.0)),
            ("1,234", false, Ambiguous),
            ("0,125", false, Value(0.125)),
            ("1e3", false, Value(1000.0)),
            ("12,34,5", false, NotANumber),
            ("1.23,4.5", false, NotANumber),
            ("around 1950", true, NotANumber),
            ("", false, NotANumber),
            ("inf", false, NotANumber),
        ] {
            assert_eq!(read_number(text, whole), want, "{text:?} whole={whole}");
        }
    }

    #[test]
    fn dates_that_read_one_way_become_iso() {
        for (text, want) in [
            ("1931", Some("1931")),
            ("1931-03-12", Some("1931-03-12")),
            ("1931-3", Some("1931-03")),
            ("12 March 1931", Some("1931-03-12")),
            ("March 12, 1931", Some("1931-03-12")),
            ("12. März 1931", Some("1931-03-12")),
            ("12 mars 1931", Some("1931-03-12")),
            ("12.3.1931", Some("1931-03-12")),
            ("12.III.1931", Some("1931-03-12")),
            ("III.1931", Some("1931-03")),
            ("March 1931", Some("1931-03")),
            ("25/12/1931", Some("1931-12-25")),
            ("12/25/1931", Some("1931-12-25")),
            ("5/5/1931", Some("1931-05-05")),
            ("3/4/1931", None),
            ("31.2.1931", None),
            ("29.2.1932", Some("1932-02-29")),
            ("'31", None),
            ("spring 1931", None),
            ("", None),
        ] {
            assert_eq!(read_date(text).as_deref(), want, "{text:?}");
        }
    }
}
