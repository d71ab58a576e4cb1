//! Accuracy of the embedded OCR engine on the labeled sample cards of
//! `../shared/sample-cards/truth.jsonl`, read from the original image as
//! the runner gives it to OCR: a field counts as right when its value
//! equals the truth after normalising case, punctuation and spacing.
//! Target: at least 97 %. (Unlabeled catalog cards are scored on real
//! cards in `catalog_cards.rs`.)

#![cfg(feature = "ocr")]

use cardex_core::{Field, FieldType};
use cardex_engine::labels::normalize;
use cardex_engine::ocr::OcrEngine;
use cardex_engine::{CompiledPrompt, Engine};

#[tokio::test(flavor = "multi_thread")]
async fn labeled_sample_cards_are_read_accurately() {
    let dir = cardex_testkit::sample_cards_dir();
    let engine = OcrEngine::new("eng", 2).expect("Tesseract with English data is installed");
    let (mut right, mut total) = (0, 0);
    let mut misses = Vec::new();
    for card in cardex_testkit::sample_truth("labeled", None) {
        let expected = card["fields"].as_object().unwrap();
        let fields: Vec<Field> = expected
            .keys()
            .map(|k| Field::new(k, FieldType::Text))
            .collect();
        let prompt = CompiledPrompt::new(&fields).unwrap();
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
        for (name, want) in expected {
            total += 1;
            let have = got.fields[name].as_str().unwrap_or("");
            if normalize(have) == normalize(want.as_str().unwrap()) {
                right += 1;
                let conf = got.confidence[name].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&conf));
            } else {
                misses.push(format!(
                    "{} {name}: want {want}, got {have:?}\n    text: {:?}",
                    card["file"],
                    got.text.as_ref().map_or("", |t| t.text.as_str())
                ));
            }
        }
    }
    let accuracy = f64::from(right) / f64::from(total);
    println!(
        "OCR field accuracy on labeled sample cards: {right}/{total} = {:.1}%",
        accuracy * 100.0
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    assert!(total >= 60, "too few labeled fields scored: {total}");
    assert!(
        accuracy >= 0.97,
        "accuracy {:.1}% below 97%; misses:\n{}",
        accuracy * 100.0,
        misses.join("\n")
    );
}

/// A two-sided card (DESIGN §16) is read front, then back: its text is the
/// front's followed by the back's, and each field is read where it is
/// written, the front's reading first.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_sided_card_reads_both_sides_front_first() {
    let dir = cardex_testkit::sample_cards_dir();
    let engine = OcrEngine::new("eng", 2).expect("Tesseract with English data is installed");
    let truth = cardex_testkit::sample_truth("labeled", None);
    let (front, back) = (&truth[0], &truth[1]);
    // The fields of both.
    let mut fields: Vec<Field> = Vec::new();
    for card in [front, back] {
        for name in card["fields"].as_object().unwrap().keys() {
            if !fields.iter().any(|f| &f.name == name) {
                fields.push(Field::new(name, FieldType::Text));
            }
        }
    }
    let prompt = CompiledPrompt::new(&fields).unwrap();
    let prepare = |card: &serde_json::Value| {
        cardex_engine::prepare::prepare_for_ocr(
            &dir.join(card["file"].as_str().unwrap()),
            cardex_engine::image::DEFAULT_MAX_PIXELS,
        )
        .unwrap()
    };
    let (f, b) = (prepare(front), prepare(back));
    let alone_f = engine
        .extract(std::slice::from_ref(&f), &prompt)
        .await
        .unwrap();
    let alone_b = engine
        .extract(std::slice::from_ref(&b), &prompt)
        .await
        .unwrap();
    let both = engine.extract(&[f, b], &prompt).await.unwrap();

    let text = |x: &cardex_engine::Extraction| x.text.clone().unwrap().text;
    assert_eq!(
        text(&both),
        format!("{}\n{}", text(&alone_f), text(&alone_b))
    );
    for field in &fields {
        let name = &field.name;
        let want = if alone_f.fields[name].is_null() {
            &alone_b.fields[name]
        } else {
            &alone_f.fields[name]
        };
        assert_eq!(&both.fields[name], want, "{name}: {:?}", text(&both));
    }
}
