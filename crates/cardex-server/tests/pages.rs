//! Multi-page files (DESIGN §16), through the real server, real poppler
//! and a data dir on disk: a PDF or multi-page TIFF becomes one card per
//! page, each page stored as an image of its own (a scanned page's JPEG
//! byte for byte), named `<file> p. <page>` and carrying `source_name`
//! and `page` into results and exports; bad files are refused whole with
//! their code and leave nothing behind; a page over the pixel limit is
//! refused alone.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Four of the shared sample cards' JPEGs.
fn sample_jpegs(names: &[&str]) -> Vec<Vec<u8>> {
    names
        .iter()
        .map(|n| std::fs::read(sample_cards_dir().join(n)).unwrap())
        .collect()
}

const FOUR: [&str; 4] = [
    "card-01-0000.jpg",
    "card-01-0001.jpg",
    "card-01-0002.jpg",
    "card-01-0004.jpg",
];

async fn open_batch_with_fields(srv: &TestServer, name: &str) -> String {
    let id = srv.create_batch(name).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, b) = srv
        .put(&format!("/api/batches/{id}/fields"), fields_json())
        .await;
    assert_eq!(s, 200, "{b}");
    id
}

/// The stored file of an open batch's card.
fn staged(srv: &TestServer, batch: &str, card: &Value) -> Vec<u8> {
    std::fs::read(srv.path(&format!(
        "uploads/{batch}/{}",
        card["stored_name"].as_str().unwrap()
    )))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_of_scans_becomes_a_card_per_page_and_each_reads_as_its_page() {
    let srv = TestServer::with_config(sim_config(&start_sim(Default::default()).await)).await;
    let jpegs = sample_jpegs(&FOUR);
    let pdf = cardex_testkit::pdf::jpeg_pdf(&jpegs);

    let id = open_batch_with_fields(&srv, "box").await;
    let (s, up) = srv.upload(&id, &[("box-12.pdf", pdf)]).await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["rejected"], json!([]), "{up}");
    let cards = up["accepted"].as_array().unwrap();
    assert_eq!(cards.len(), 4, "{up}");
    for (i, card) in cards.iter().enumerate() {
        let page = i as i64 + 1;
        assert_eq!(card["original_name"], format!("box-12.pdf p. {page}"));
        assert_eq!(card["source_name"], "box-12.pdf");
        assert_eq!(card["page"], page);
        assert_eq!(card["format"], "jpeg");
        // The scanned page as it was embedded, byte for byte.
        assert!(
            staged(&srv, &id, card) == jpegs[i],
            "page {page} is not its JPEG"
        );
    }
    let (s, listed) = srv.get(&format!("/api/batches/{id}/images")).await;
    assert_eq!(s, 200);
    assert_eq!(&listed, &up["accepted"]);
    // Only the pages are kept, not the PDF.
    assert_eq!(srv.files().len(), 4, "{:?}", srv.files());

    // The same JPEGs uploaded one by one read the same, page for page.
    let singles = open_batch_with_fields(&srv, "singles").await;
    let parts: Vec<(&str, Vec<u8>)> = FOUR.iter().copied().zip(jpegs.clone()).collect();
    let (s, up) = srv.upload(&singles, &parts).await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["accepted"][0]["page"], Value::Null);
    assert_eq!(up["accepted"][0]["source_name"], FOUR[0]);
    for batch in [&id, &singles] {
        srv.start_batch(batch).await;
        let done = srv.wait_finished(batch).await;
        assert_eq!(done["counts"]["done"], 4, "{done}");
    }
    let (paged, single) = (srv.results(&id).await, srv.results(&singles).await);
    for (i, (p, s)) in paged.iter().zip(&single).enumerate() {
        assert_eq!(p["result"], s["result"], "page {}", i + 1);
        assert_eq!(p["source_name"], "box-12.pdf");
        assert_eq!(p["page"], i + 1);
        assert_eq!(s["source_name"], FOUR[i]);
        assert_eq!(s["page"], Value::Null);
    }
    assert_ne!(paged[0]["result"], paged[1]["result"]);

    // Exports carry both.
    let get = async |format: &str| {
        let res = reqwest::get(srv.url(&format!("/api/batches/{id}/results?format={format}")))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap().to_vec()
    };
    let csv = String::from_utf8(get("csv").await).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap().trim_start_matches('\u{feff}'),
        "card_id,original_name,state,title,year,error,source_name,page"
    );
    let second = lines.nth(1).unwrap();
    assert!(
        second.contains(",box-12.pdf p. 2,done,") && second.ends_with(",,box-12.pdf,2"),
        "{second}"
    );
    let jsonl = String::from_utf8(get("jsonl").await).unwrap();
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[3]["source_name"], "box-12.pdf");
    assert_eq!(rows[3]["page"], 4);
    let xlsx = get("xlsx").await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml")
        .unwrap()
        .read_to_string(&mut strings)
        .unwrap();
    for want in ["<t>source_name</t>", "<t>page</t>", "<t>box-12.pdf</t>"] {
        assert!(strings.contains(want), "{want} in {strings}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_text_are_rendered() {
    let srv = TestServer::start().await;
    let id = open_batch_with_fields(&srv, "text").await;
    let pdf = cardex_testkit::pdf::text_pdf(&["Catalogue of the Library", "Second page"]);
    let (s, up) = srv.upload(&id, &[("typed.pdf", pdf)]).await;
    assert_eq!(s, 200, "{up}");
    let cards = up["accepted"].as_array().unwrap();
    assert_eq!(cards.len(), 2, "{up}");
    let mut pages = Vec::new();
    for card in cards {
        // US letter at 300 dpi.
        assert_eq!(
            (&card["format"], &card["width"], &card["height"]),
            (&json!("png"), &json!(2550), &json!(3300)),
            "{card}"
        );
        let page = image::load_from_memory(&staged(&srv, &id, card))
            .unwrap()
            .to_luma8();
        // The line's baseline is 92 pt below the top (383 px); ink
        // there, none further down.
        let dark = |rows: std::ops::Range<u32>| {
            rows.flat_map(|y| (0..page.width()).map(move |x| (x, y)))
                .filter(|&(x, y)| page.get_pixel(x, y)[0] < 100)
                .count()
        };
        assert!(dark(250..400) > 2_000, "no text drawn");
        assert_eq!(dark(600..3300), 0);
        pages.push(page);
    }
    assert_ne!(pages[0], pages[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_page_tiff_becomes_a_card_per_page() {
    let srv = TestServer::start().await;
    let id = open_batch_with_fields(&srv, "tiff").await;
    let sizes = [(30, 90), (90, 30), (40, 40)];
    let (s, up) = srv
        .upload(&id, &[("scans.tif", multipage_tiff(&sizes))])
        .await;
    assert_eq!(s, 200, "{up}");
    let cards = up["accepted"].as_array().unwrap();
    assert_eq!(cards.len(), 3, "{up}");
    for (i, card) in cards.iter().enumerate() {
        assert_eq!(card["original_name"], format!("scans.tif p. {}", i + 1));
        assert_eq!(card["source_name"], "scans.tif");
        assert_eq!(card["page"], i + 1);
        // Each page losslessly, as PNG: its size and its grey level.
        assert_eq!(card["format"], "png");
        let page = image::load_from_memory(&staged(&srv, &id, card))
            .unwrap()
            .to_rgb8();
        assert_eq!(page.dimensions(), sizes[i]);
        assert!(page.pixels().all(|p| p.0 == [(i * 80) as u8; 3]));
    }
    // Previews are of the pages.
    for card in cards {
        let res = srv
            .client
            .get(srv.url(&format!("/api/batches/{id}/images/{}/preview", card["id"])))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let preview = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(
            (preview.width() as i64, preview.height() as i64),
            (
                card["width"].as_i64().unwrap(),
                card["height"].as_i64().unwrap()
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_are_refused_whole_with_their_code_and_leave_nothing() {
    let mut config = cardex_server::ServerConfig::default();
    config.limits.max_pages = 3;
    let srv = TestServer::with_config(config).await;
    let id = srv.open_batch().await;
    let jpegs = sample_jpegs(&FOUR);
    let pdf = cardex_testkit::pdf::jpeg_pdf(&jpegs[..2]);
    let bad: [(&str, Vec<u8>, &str); 6] = [
        (
            "locked.pdf",
            cardex_testkit::pdf::encrypted_pdf(&jpegs[..1]),
            "pdf_encrypted",
        ),
        ("cut.pdf", pdf[..pdf.len() / 2].to_vec(), "pdf_damaged"),
        (
            "junk.pdf",
            b"%PDF-1.7\nthis is no PDF at all\n".to_vec(),
            "pdf_damaged",
        ),
        (
            "thick.pdf",
            cardex_testkit::pdf::jpeg_pdf(&jpegs),
            "too_many_pages",
        ),
        (
            "thick.tif",
            multipage_tiff(&[(8, 8), (9, 9), (10, 10), (11, 11)]),
            "too_many_pages",
        ),
        // A page count far beyond the objects there are.
        (
            "claims.pdf",
            String::from_utf8_lossy(&pdf)
                .replace("/Count 2", "/Count 99999999")
                .into_bytes(),
            "pdf_damaged",
        ),
    ];
    let before = srv.files();
    let (_, cards_before) = srv.get(&format!("/api/batches/{id}/images")).await;
    for (name, bytes, code) in &bad {
        let (s, body) = srv.upload(&id, &[(name, bytes.clone())]).await;
        assert_error(s, &body, 422, code);
        assert_eq!(body["rejected"][0]["original_name"], *name, "{body}");
        assert_eq!(body["rejected"][0].get("page"), None, "{body}");
        assert_eq!(srv.files(), before, "{name} left files behind");
    }
    let (_, cards_after) = srv.get(&format!("/api/batches/{id}/images")).await;
    assert_eq!(cards_after, cards_before);

    // Beside a good file, a bad one is reported and the good one kept.
    let (s, up) = srv
        .upload(
            &id,
            &[
                ("locked.pdf", bad[0].1.clone()),
                ("good.pdf", cardex_testkit::pdf::jpeg_pdf(&jpegs[2..3])),
            ],
        )
        .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(up["rejected"][0]["error"]["code"], "pdf_encrypted");
    assert_eq!(up["accepted"][0]["original_name"], "good.pdf p. 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_over_the_pixel_limit_is_refused_and_the_others_kept() {
    let mut config = cardex_server::ServerConfig::default();
    // The third sample is 1514 × 924; the others are under 800 × 500.
    config.limits.max_pixels = 1_000_000;
    let srv = TestServer::with_config(config).await;
    let id = open_batch_with_fields(&srv, "big page").await;
    let jpegs = sample_jpegs(&[FOUR[0], FOUR[2], FOUR[1]]);
    let (s, up) = srv
        .upload(&id, &[("mixed.pdf", cardex_testkit::pdf::jpeg_pdf(&jpegs))])
        .await;
    assert_eq!(s, 200, "{up}");
    let pages: Vec<&Value> = up["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["page"])
        .collect();
    assert_eq!(pages, [&json!(1), &json!(3)], "{up}");
    assert_eq!(
        up["rejected"],
        json!([{
            "original_name": "mixed.pdf p. 2",
            "source_name": "mixed.pdf",
            "page": 2,
            "error": up["rejected"][0]["error"].clone(),
        }])
    );
    assert_eq!(up["rejected"][0]["error"]["code"], "image_too_large");
    assert_eq!(srv.files().len(), 2, "{:?}", srv.files());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_bomb_is_stopped_within_its_time() {
    let mut config = cardex_server::ServerConfig::default();
    config.limits.pdf_timeout = Duration::from_secs(1);
    let srv = TestServer::with_config(config).await;
    let id = srv.open_batch().await;
    // Millions of drawing operations in a few hundred KB: seconds of work
    // for every reader of the file.
    let bomb = cardex_testkit::pdf::content_bomb_pdf(4_000_000);
    assert!(bomb.len() < 2_000_000, "{}", bomb.len());
    let before = srv.files();
    let started = Instant::now();
    let (s, body) = srv.upload(&id, &[("bomb.pdf", bomb)]).await;
    let took = started.elapsed();
    assert_error(s, &body, 422, "pdf_too_complex");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(srv.files(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_needs_more_memory_than_allowed_is_refused() {
    let mut config = cardex_server::ServerConfig::default();
    // Room for the tools to start and list the pages, not to draw one at
    // 300 dpi: poppler runs out of memory under the limit.
    config.limits.pdf_memory_bytes = 20_000_000;
    let srv = TestServer::with_config(config).await;
    let id = srv.open_batch().await;
    let before = srv.files();
    let pdf = cardex_testkit::pdf::text_pdf(&["Too big to draw here"]);
    let (s, body) = srv.upload(&id, &[("typed.pdf", pdf)]).await;
    assert_error(s, &body, 422, "pdf_too_complex");
    assert_eq!(body["rejected"][0]["page"], 1, "{body}");
    assert_eq!(srv.files(), before);
}
