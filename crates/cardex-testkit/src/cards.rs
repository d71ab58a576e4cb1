//! Synthetic catalog cards, as many as a test wants: typed text (DejaVu,
//! sans or serif, several sizes) on a cream card with speckle, each with
//! what is written on it. Some titles are letter-spaced and some are
//! broken across lines with a hyphen, as on real typed cards, so that a
//! test of reading them meets what OCR meets.
//!
//! The fonts are Debian's `fonts-dejavu-core` (installed by
//! `scripts/deps.sh test`).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use image::{ImageFormat, Rgb, RgbImage};

/// One synthetic card: its file name, PNG bytes and what it says.
#[derive(Debug, Clone)]
pub struct SyntheticCard {
    /// `synthetic-0007.png`.
    pub name: String,
    /// The image.
    pub png: Vec<u8>,
    /// Field → the value written on the card: `call_number`, `author`,
    /// `title`, `place`, `year`.
    pub fields: BTreeMap<String, String>,
}

const FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";
const FONTS: [&str; 2] = ["DejaVuSans.ttf", "DejaVuSerif.ttf"];

const FIRST: [&str; 24] = [
    "Anna", "Bruno", "Clara", "Dieter", "Elena", "Franz", "Greta", "Hugo", "Ines", "Jakob",
    "Karin", "Ludwig", "Marta", "Niklaus", "Olga", "Paul", "Rosa", "Stefan", "Theres", "Ulrich",
    "Vera", "Walter", "Yvonne", "Zoltan",
];
const LAST: [&str; 30] = [
    "Ammann",
    "Brunner",
    "Cattaneo",
    "Dubois",
    "Egger",
    "Fontaine",
    "Gerber",
    "Hofmann",
    "Imhof",
    "Jäggi",
    "Keller",
    "Lüthi",
    "Meier",
    "Nussbaum",
    "Oberholzer",
    "Petrov",
    "Quadri",
    "Roth",
    "Schneider",
    "Tschudi",
    "Urech",
    "Vogt",
    "Weber",
    "Zürcher",
    "Bachmann",
    "Frey",
    "Graf",
    "Huber",
    "Moser",
    "Steiner",
];
const WORDS: [&str; 40] = [
    "Geschichte",
    "Stadt",
    "Kirche",
    "Reise",
    "Briefe",
    "Chronik",
    "Alpen",
    "Rhein",
    "Handel",
    "Zunft",
    "Garten",
    "Schule",
    "Musik",
    "Sprache",
    "Wasser",
    "Brücke",
    "Kloster",
    "Markt",
    "Familie",
    "Karten",
    "Journal",
    "Memoire",
    "Voyage",
    "River",
    "Northern",
    "Letters",
    "Modern",
    "Studies",
    "Botanik",
    "Insekten",
    "Mineralien",
    "Urkunden",
    "Gedichte",
    "Predigten",
    "Rechnungen",
    "Zeitung",
    "Almanach",
    "Landschaft",
    "Bauern",
    "Gemeinde",
];
const LINKS: [&str; 6] = ["der", "und", "im", "am", "of the", "and"];
const PLACES: [&str; 16] = [
    "Basel",
    "Zürich",
    "Bern",
    "Luzern",
    "Genève",
    "Lausanne",
    "Chur",
    "Aarau",
    "Schaffhausen",
    "Solothurn",
    "Freiburg",
    "Strassburg",
    "Konstanz",
    "Winterthur",
    "St. Gallen",
    "Neuchâtel",
];

/// `n` cards from `seed`; the same arguments give the same cards. Fails
/// when the DejaVu fonts are not installed.
pub fn synthetic_cards(n: usize, seed: u64) -> Result<Vec<SyntheticCard>, String> {
    let fonts: Vec<FontVec> = FONTS
        .iter()
        .map(|name| {
            let path = Path::new(FONT_DIR).join(name);
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "{}: {e}; install fonts-dejavu-core (scripts/deps.sh test)",
                    path.display()
                )
            })?;
            FontVec::try_from_vec(bytes).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect::<Result<_, String>>()?;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    Ok((0..n).map(|i| card(i, &fonts, &mut rng)).collect())
}

fn card(i: usize, fonts: &[FontVec], rng: &mut Rng) -> SyntheticCard {
    let author_first = rng.pick(&FIRST);
    let author_last = rng.pick(&LAST);
    let mut title_words: Vec<String> = Vec::new();
    for k in 0..rng.below(3) + 2 {
        if k > 0 && rng.below(3) == 0 {
            title_words.push(rng.pick(&LINKS).to_owned());
        }
        title_words.push(rng.pick(&WORDS).to_owned());
    }
    let title = title_words.join(" ");
    let place = rng.pick(&PLACES).to_owned();
    let year = (1700 + rng.below(300)).to_string();
    let letters = (b'A' + rng.below(26) as u8) as char;
    let second = (b'A' + rng.below(26) as u8) as char;
    let call_number = format!(
        "{letters}{second}{} .{}{}",
        100 + rng.below(9900),
        (b'A' + rng.below(26) as u8) as char,
        10 + rng.below(90)
    );

    let font = &fonts[rng.below(fonts.len() as u64) as usize];
    let size = 30.0 + rng.below(8) as f32;
    let (w, h) = (1250u32, 760u32);
    let cream = [
        240 + rng.below(12) as u8,
        232 + rng.below(12) as u8,
        210 + rng.below(16) as u8,
    ];
    let mut img = RgbImage::from_pixel(w, h, Rgb(cream));
    let ink = 20 + rng.below(40) as u8;

    let mut lines: Vec<String> = vec![
        call_number.clone(),
        format!("{author_last}, {author_first}"),
    ];
    // Titles as a typist set them: mostly plain, some letter-spaced, some
    // broken across two lines with a hyphen.
    match rng.below(6) {
        0 => lines.push(letter_spaced(&title)),
        1 if title.len() > 14 => {
            let (a, b) = hyphenate(&title);
            lines.push(a);
            lines.push(b);
        }
        _ => lines.push(title.clone()),
    }
    lines.push(format!("{place} : {}, {year}.", rng.pick(&LAST)));
    lines.push(format!(
        "{} p. : ill. ; {} cm",
        40 + rng.below(600),
        15 + rng.below(15)
    ));
    let mut y = 90.0 + rng.below(30) as f32;
    for (k, line) in lines.iter().enumerate() {
        let x = if k == 0 { 60.0 } else { 150.0 };
        draw(&mut img, font, size, (x, y), line, ink, rng);
        y += size * 1.7;
    }
    // Speckle: dust and paper grain, a few hundred dark and light dots.
    for _ in 0..600 {
        let (x, y) = (
            rng.below(u64::from(w)) as u32,
            rng.below(u64::from(h)) as u32,
        );
        let shade = if rng.below(2) == 0 { 120 } else { 255 };
        img.put_pixel(x, y, Rgb([shade, shade, shade.saturating_sub(20)]));
    }
    let mut png = Cursor::new(Vec::new());
    img.write_to(&mut png, ImageFormat::Png)
        .expect("encoding an RGB image in memory cannot fail");
    let fields = [
        ("call_number", call_number),
        ("author", format!("{author_last}, {author_first}")),
        ("title", title),
        ("place", place),
        ("year", year),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    SyntheticCard {
        name: format!("synthetic-{i:04}.png"),
        png: png.into_inner(),
        fields,
    }
}

/// `B a s e l   G e s c h i c h t e`: letters apart, words further apart.
fn letter_spaced(text: &str) -> String {
    text.split(' ')
        .map(|w| w.chars().map(String::from).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("   ")
}

/// Breaks `text` inside its longest word: `Geschich-` / `te der Stadt`.
fn hyphenate(text: &str) -> (String, String) {
    let words: Vec<&str> = text.split(' ').collect();
    let (at, longest) = words
        .iter()
        .enumerate()
        .max_by_key(|(_, w)| w.chars().count())
        .expect("a title has words");
    let cut = longest
        .char_indices()
        .nth(longest.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let mut first: Vec<String> = words[..at].iter().map(|w| (*w).to_owned()).collect();
    first.push(format!("{}-", &longest[..cut]));
    let mut second = vec![longest[cut..].to_owned()];
    second.extend(words[at + 1..].iter().map(|w| (*w).to_owned()));
    (first.join(" "), second.join(" "))
}

/// Draws one line of text with its baseline at `at`, each letter a little
/// off the line and lighter or darker, as a typewriter strikes them.
fn draw(
    img: &mut RgbImage,
    font: &FontVec,
    size: f32,
    at: (f32, f32),
    text: &str,
    ink: u8,
    rng: &mut Rng,
) {
    let (x, y) = at;
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let mut caret = x;
    let mut previous = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = previous {
            caret += scaled.kern(p, id);
        }
        let jitter = rng.below(3) as f32 - 1.0;
        let ink = ink.saturating_add(rng.below(50) as u8);
        let glyph = id.with_scale_and_position(scale, point(caret, y + jitter));
        caret += scaled.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (px, py) = (
                bounds.min.x as i64 + i64::from(gx),
                bounds.min.y as i64 + i64::from(gy),
            );
            if px < 0 || py < 0 || px >= i64::from(img.width()) || py >= i64::from(img.height()) {
                return;
            }
            let pixel = img.get_pixel_mut(px as u32, py as u32);
            for channel in pixel.0.iter_mut() {
                let paper = f32::from(*channel);
                *channel = (paper + (f32::from(ink) - paper) * coverage.min(1.0)) as u8;
            }
        });
    }
}

/// A small deterministic generator (xorshift64*): the cards must be the
/// same on every machine and run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }
}
