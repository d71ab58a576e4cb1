//! The embedded OCR engine on real library catalog cards: the dev set of
//! `../shared/real-cards/basel-catalog` (60 typed cards, German, French and
//! English, with corrected transcriptions), read from the original images
//! in `deu+eng` as a batch of that catalogue would be set, and scored per
//! field ([`cardex_engine::score`]). Targets: mean ≥ 0.75, year ≥ 0.90.
//! `CARDEX_OCR_LANG` reads in another language; `CARDEX_SHOW_CARDS=1`
//! prints every card's text and misses.

#![cfg(feature = "ocr")]

use std::path::PathBuf;

use cardex_core::{Field, FieldType};
use cardex_engine::ocr::OcrEngine;
use cardex_engine::score::{CATALOG_FIELDS, Tally};
use cardex_engine::{CompiledPrompt, Engine};

fn dev_set() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/real-cards/basel-catalog")
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_cards_of_the_dev_set_are_read() {
    let dir = dev_set();
    let truth = std::fs::read_to_string(dir.join("truth.jsonl")).expect("the dev set is there");
    let lang = std::env::var("CARDEX_OCR_LANG").unwrap_or_else(|_| "deu+eng".into());
    let show = std::env::var_os("CARDEX_SHOW_CARDS").is_some();
    let engine = OcrEngine::new(&lang, 2).expect("Tesseract with the language data is installed");
    let fields: Vec<Field> = [
        "author",
        "title",
        "year",
        "place",
        "publisher",
        "pages",
        "format",
        "shelfmark",
    ]
    .iter()
    .map(|n| Field::new(n, FieldType::Text))
    .collect();
    let prompt = CompiledPrompt::new(&fields).unwrap();
    let mut tally = Tally::default();
    let mut cards = 0;
    let mut texts: Vec<(cardex_engine::Reading, serde_json::Value)> = Vec::new();
    for line in truth.lines() {
        let card: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = dir.join(card["file"].as_str().unwrap());
        let image = cardex_engine::prepare::prepare_for_ocr(
            &file,
            cardex_engine::image::DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let got = engine
            .extract(std::slice::from_ref(&image), &prompt)
            .await
            .unwrap();
        assert!(got.text.as_ref().is_some_and(|t| !t.text.is_empty()));
        let misses = tally.add(
            CATALOG_FIELDS,
            card["fields"].as_object().unwrap(),
            &got.fields,
        );
        if show {
            println!("=== {}\n{}", card["file"], got.raw);
            for m in &misses {
                println!("  miss {m}");
            }
        }
        texts.push((
            got.text.clone().expect("OCR reads the text"),
            card["fields"].clone(),
        ));
        cards += 1;
    }
    println!(
        "Catalog cards, {cards} cards, OCR in {lang}:\n{}",
        tally.table()
    );
    cross_check_on_real_cards(&texts);
    assert_eq!(cards, 60);
    assert!(
        tally.mean() >= 0.75,
        "mean {:.2} below 0.75\n{}",
        tally.mean(),
        tally.table()
    );
    assert!(
        tally.rate("year") >= 0.90,
        "year {:.2} below 0.90\n{}",
        tally.rate("year"),
        tally.table()
    );
}

/// The cross-check ([`cardex_core::crosscheck`]) against these cards' OCR
/// text: a model that gave each card's corrected transcription should see
/// few of its values flagged `not_in_text` (OCR noise on real cards is
/// what the folding and the edit allowance are for), and one that gave
/// the next card's value for a field should see most of them flagged.
/// Cards OCR reads too poorly to check against (handwriting, under
/// [`MIN_LEGIBLE`]) are skipped, as the cross-check skips them. Targets:
/// ≤ 5% of true values flagged, ≥ 90% of swapped ones.
fn cross_check_on_real_cards(cards: &[(cardex_engine::Reading, serde_json::Value)]) {
    use cardex_core::crosscheck::{CardText, MIN_LEGIBLE};
    const TEXT_FIELDS: [&str; 5] = ["author", "title", "place", "publisher", "shelfmark"];
    let (mut true_values, mut flagged) = (0, 0);
    let (mut swapped, mut caught) = (0, 0);
    let mut wrongly = Vec::new();
    let mut skipped = Vec::new();
    for (i, (reading, fields)) in cards.iter().enumerate() {
        if reading.confidence < MIN_LEGIBLE {
            skipped.push(format!("{:.2}", reading.confidence));
            continue;
        }
        let text = CardText::new(&reading.text);
        let next = &cards[(i + 1) % cards.len()].1;
        for field in TEXT_FIELDS {
            if let Some(value) = fields[field].as_str()
                && let Some(found) = text.contains(value)
            {
                true_values += 1;
                if !found {
                    flagged += 1;
                    wrongly.push(format!("{field}: {value} ({:.2})", reading.confidence));
                }
            }
            if let Some(other) = next[field].as_str()
                && Some(other) != fields[field].as_str()
                && let Some(found) = text.contains(other)
            {
                swapped += 1;
                caught += usize::from(!found);
            }
        }
    }
    let false_pct = flagged as f64 * 100.0 / true_values.max(1) as f64;
    let caught_pct = caught as f64 * 100.0 / swapped.max(1) as f64;
    println!(
        "Cross-check on the real cards' OCR text: {} of {} cards too poorly read to check \
         (confidence {}); {flagged} of {true_values} true values flagged ({false_pct:.1}%), \
         {caught} of {swapped} swapped values flagged ({caught_pct:.1}%)\n\
         flagged wrongly: {wrongly:#?}",
        skipped.len(),
        cards.len(),
        skipped.join(", ")
    );
    assert!(false_pct <= 5.0, "{false_pct:.1}% of true values flagged");
    assert!(
        caught_pct >= 90.0,
        "only {caught_pct:.1}% of swapped values flagged"
    );
}
