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
    for line in truth.lines() {
        let card: serde_json::Value = serde_json::from_str(line).unwrap();
        let file = dir.join(card["file"].as_str().unwrap());
        let image = cardex_engine::prepare::prepare_for_ocr(
            &file,
            cardex_engine::image::DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let got = engine.extract(&image, &prompt).await.unwrap();
        assert!(got.fields["_text"].as_str().is_some_and(|t| !t.is_empty()));
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
        cards += 1;
    }
    println!(
        "Catalog cards, {cards} cards, OCR in {lang}:\n{}",
        tally.table()
    );
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
