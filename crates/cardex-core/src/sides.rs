//! Two-sided cards (DESIGN §16): which image of a batch is a card's front
//! and which its back.
//!
//! A batch of two-sided cards pairs its images in one of two ways, chosen
//! when it is created:
//! - **by name**: the part of the file name before the extension ends in a
//!   side mark, `_front`/`_back`, `_recto`/`_verso` (also after `-`, `.` or
//!   a space), `a`/`b` or `-1`/`-2`, in any case. `box3_0012_front.jpg`
//!   pairs with `box3_0012_back.jpg`, `0012a.tif` with `0012b.tif`. The
//!   rest of the name, with the kind of mark, is the pair's key
//!   ([`side_of_name`]);
//! - **by upload order**, for duplex scans: the first image is a front,
//!   the next its back, and so on.

use serde::{Deserialize, Serialize};

/// A side of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The side read first.
    Front,
    /// The other side.
    Back,
}

impl Side {
    /// The name stored and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Front => "front",
            Self::Back => "back",
        }
    }

    /// Parses [`Side::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "front" => Some(Self::Front),
            "back" => Some(Self::Back),
            _ => None,
        }
    }
}

/// How a two-sided batch finds each card's two images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// By a side mark at the end of the file name ([`side_of_name`]).
    Name,
    /// By upload order: odd images are fronts, each even one the back of
    /// the image before it.
    Order,
}

impl Pairing {
    /// The name stored and sent over the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Order => "order",
        }
    }

    /// Parses [`Pairing::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "name" => Some(Self::Name),
            "order" => Some(Self::Order),
            _ => None,
        }
    }
}

/// The side marks a name may end in, as (front, back), each kind with the
/// characters that may come before it.
const WORD_MARKS: [(&str, &str); 2] = [("front", "back"), ("recto", "verso")];

/// Which side of which card a file name says it is: the side, and the
/// key it shares with its other side. `None` when the name carries no side
/// mark.
///
/// The key is the name before the mark (lower-cased) with the kind of
/// mark, so `12_front.jpg` pairs with `12_back.png` (the extension does not
/// matter) but not with `12b.jpg`.
pub fn side_of_name(file_name: &str) -> Option<(Side, String)> {
    let stem = match file_name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file_name,
    };
    let lower = stem.to_lowercase();
    for (front, back) in WORD_MARKS {
        for (word, side) in [(front, Side::Front), (back, Side::Back)] {
            if let Some(rest) = lower.strip_suffix(word)
                && let Some(base) = rest.strip_suffix(['_', '-', '.', ' '])
                && !base.is_empty()
            {
                return Some((side, format!("{front}:{base}")));
            }
        }
    }
    for (mark, side) in [("-1", Side::Front), ("-2", Side::Back)] {
        if let Some(base) = lower.strip_suffix(mark)
            && !base.is_empty()
        {
            return Some((side, format!("1:{base}")));
        }
    }
    for (mark, side) in [('a', Side::Front), ('b', Side::Back)] {
        if let Some(base) = lower.strip_suffix(mark)
            && !base.is_empty()
        {
            return Some((side, format!("a:{base}")));
        }
    }
    None
}

/// Compares file names as people number them: runs of digits by their
/// value, so `scan-2` comes before `scan-10` (the order a duplex scanner
/// wrote them in, which pairing by order depends on).
pub fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digits = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some((digits, run))
        })
    }
    let mut left = runs(a);
    let mut right = runs(b);
    loop {
        match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, x)), Some((true, y))) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                let by_value = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
                if by_value.is_ne() {
                    return by_value;
                }
            }
            (Some((_, x)), Some((_, y))) => {
                if x != y {
                    return x.cmp(y);
                }
            }
        }
    }
}

/// The sentence a two-sided card's prompt gains: which image is which.
pub const TWO_SIDED_NOTE: &str = "\
The card has two sides, sent as two images: the first image is its front, the second its back. \
Read both; a field's value may be on either side.";

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Option<(Side, String)> {
        side_of_name(name)
    }

    #[test]
    fn word_marks_pair_whatever_the_case_and_extension() {
        let front = key("Box3_0012_FRONT.jpg").unwrap();
        let back = key("box3_0012_back.png").unwrap();
        assert_eq!(front.0, Side::Front);
        assert_eq!(back.0, Side::Back);
        assert_eq!(front.1, back.1);
        assert_eq!(
            key("0012-recto.tif").unwrap().1,
            key("0012 verso.tif").unwrap().1
        );
        assert_eq!(key("0012-recto.tif").unwrap().0, Side::Front);
    }

    #[test]
    fn letter_and_number_marks() {
        assert_eq!(key("0012a.jpg"), Some((Side::Front, "a:0012".into())));
        assert_eq!(key("0012B.JPG"), Some((Side::Back, "a:0012".into())));
        assert_eq!(key("card-1.jpg"), Some((Side::Front, "1:card".into())));
        assert_eq!(key("card-2.jpg"), Some((Side::Back, "1:card".into())));
    }

    #[test]
    fn marks_of_different_kinds_do_not_pair() {
        let a = key("12_front.jpg").unwrap().1;
        assert_ne!(a, key("12b.jpg").unwrap().1);
        assert_ne!(a, key("12-2.jpg").unwrap().1);
        assert_ne!(a, key("12_verso.jpg").unwrap().1);
    }

    #[test]
    fn names_without_a_mark() {
        for name in [
            "0012.jpg",
            "front.jpg",
            "a.jpg",
            "-1.jpg",
            "scan",
            "card-3.jpg",
            "box.pdf p. 3",
        ] {
            assert_eq!(key(name), None, "{name}");
        }
        // The mark must end the name, before the extension.
        assert_eq!(key("front_0012.jpg"), None);
        // A word mark needs a separator; without one it is not a word mark.
        assert_eq!(key("storefront.jpg"), None);
    }

    #[test]
    fn numbered_names_sort_by_their_numbers() {
        let mut names = vec![
            "scan-10.jpg",
            "scan-2.jpg",
            "scan-1.jpg",
            "scan-01b.jpg",
            "box.pdf",
            "scan-11.jpg",
        ];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            names,
            [
                "box.pdf",
                "scan-1.jpg",
                "scan-01b.jpg",
                "scan-2.jpg",
                "scan-10.jpg",
                "scan-11.jpg"
            ]
        );
        // Equal by value, the names still have one order.
        assert_eq!(natural_order("a01", "a1"), "a01".cmp("a1"));
    }

    #[test]
    fn names_round_trip() {
        for s in [Side::Front, Side::Back] {
            assert_eq!(Side::parse(s.as_str()), Some(s));
        }
        for p in [Pairing::Name, Pairing::Order] {
            assert_eq!(Pairing::parse(p.as_str()), Some(p));
        }
    }
}
