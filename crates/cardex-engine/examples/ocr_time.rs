//! Times each stage of the OCR path on images:
//! `cargo run --release -p cardex-engine --example ocr_time -- FILE...`.

use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let t = Instant::now();
        let img = image::open(&path).expect("a readable image");
        let decode = t.elapsed();
        let t = Instant::now();
        let gray = cardex_engine::prepare::for_ocr(img).expect("preparation works");
        let prep = t.elapsed();
        let (w, h) = gray.dimensions();
        let t = Instant::now();
        let mut tess = tesseract::Tesseract::new(None, Some("eng"))
            .expect("English data")
            .set_frame(gray.as_raw(), w as i32, h as i32, 1, w as i32)
            .expect("frame")
            .set_source_resolution(300)
            .recognize()
            .expect("recognition");
        let words = tess.get_tsv_text(0).expect("text").lines().count();
        println!(
            "{path}: {w}x{h} decode {decode:.0?} prep {prep:.0?} ocr {:.0?} rows {words}",
            t.elapsed()
        );
    }
}
