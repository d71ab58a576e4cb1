//! `cardex extract`: one-shot batches from a folder, with the embedded OCR
//! engine and with a model server, through the real binary.

use std::process::Command;

use serde_json::Value;

#[test]
fn ocr_reads_a_folder_of_specimen_labels_offline() {
    let cards = cardex_testkit::sample_truth("labeled", Some("species"));
    let dir = tempfile::tempdir().unwrap();
    for c in &cards {
        let f = c["file"].as_str().unwrap();
        std::fs::copy(
            cardex_testkit::sample_cards_dir().join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let out = dir.path().join("results.json");
    let status = Command::new(env!("CARGO_BIN_EXE_cardex"))
        .arg("extract")
        .arg(dir.path())
        .args([
            "--field",
            "species",
            "--field",
            "collector",
            "--field",
            "locality",
            "--field",
            "date:date",
        ])
        .arg("-o")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(rows.len(), cards.len());
    let mut right = 0;
    for row in &rows {
        let card = cards
            .iter()
            .find(|c| c["file"] == row["original_name"])
            .unwrap();
        right += card["fields"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| row["result"][k.as_str()] == **v)
            .count();
        assert!(row["text"].is_string(), "the card's own text: {row}");
    }
    assert!(
        right * 100 >= cards.len() * 4 * 95,
        "{right} of {} fields right",
        cards.len() * 4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_server_works_too_and_failures_set_the_exit_code() {
    let config = vlm_sim::SimConfig {
        bad_answer_rate: 0.3,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let cfg = config.clone();
    tokio::spawn(async move { vlm_sim::serve(listener, cfg, std::future::pending()).await });
    let dir = tempfile::tempdir().unwrap();
    let images: Vec<Vec<u8>> = (0..12).map(|i| cardex_testkit::jpeg(7000 + i)).collect();
    for (i, img) in images.iter().enumerate() {
        std::fs::write(dir.path().join(format!("c{i:02}.jpg")), img).unwrap();
    }
    let bad = images
        .iter()
        .filter(|b| vlm_sim::answers_badly(b, &config))
        .count();
    assert!(bad > 0 && bad < 12, "fixture: {bad} bad");
    let out = dir.path().join("r.jsonl");
    let result = tokio::task::spawn_blocking({
        let (dir, out, url) = (dir.path().to_owned(), out.clone(), url.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_cardex"))
                .arg("extract")
                .arg(&dir)
                .args([
                    "--field",
                    "title",
                    "--field",
                    "year:integer",
                    "--vlm-model",
                    "sim-vlm",
                    "--max-attempts",
                    "2",
                ])
                .args(["--vlm-url", &url])
                .arg("-o")
                .arg(&out)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        result.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains(&format!("{} failed", bad)), "{stderr}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    let fields = vec![
        ("title".to_owned(), "string".to_owned()),
        ("year".to_owned(), "integer".to_owned()),
    ];
    for (i, row) in lines.iter().enumerate() {
        if row["state"] == "done" {
            assert_eq!(
                row["result"],
                Value::Object(vlm_sim::answer_for(&images[i], &fields))
            );
        }
    }
    assert_eq!(lines.iter().filter(|r| r["state"] == "failed").count(), bad);
}

/// Cards on which nothing is found are not quietly "done": the summary says
/// so in plain words, every row is flagged `empty`, and `--fail-on-empty`
/// makes it an error for scripts.
#[test]
fn a_batch_of_empty_cards_says_so_and_can_fail() {
    let dir = tempfile::tempdir().unwrap();
    for seed in 0..3 {
        // Plain colour, no text: the OCR engine finds nothing.
        std::fs::write(
            dir.path().join(format!("blank-{seed}.png")),
            cardex_testkit::png(seed),
        )
        .unwrap();
    }
    let out = dir.path().join("results.json");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cardex"))
            .arg("extract")
            .arg(dir.path())
            .args(["--field", "title", "--field", "author"])
            .args(extra)
            .arg("-o")
            .arg(&out)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let plain = run(&[]);
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("3 of 3 cards came out empty"), "{stderr}");
    assert!(stderr.contains("connect a vision model"), "{stderr}");
    assert!(stderr.contains("title: found on 0% of cards"), "{stderr}");
    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    for row in &rows {
        assert_eq!(row["flags"][0]["code"], "empty", "{row}");
    }
    let strict = run(&["--fail-on-empty"]);
    assert_eq!(strict.status.code(), Some(3));
}

/// Tesseract's own messages (`Image too small to scale!!`, `Line cannot be
/// recognized!!`, which this real catalog card makes it print) never
/// reach the terminal; with `RUST_LOG=tesseract=debug` they are in the
/// log, at debug level.
#[test]
fn tesseract_messages_go_to_the_log_not_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let card = "00417303.jpg";
    std::fs::copy(
        cardex_testkit::sample_cards_dir()
            .join("../real-cards/basel-catalog")
            .join(card),
        dir.path().join(card),
    )
    .unwrap();
    let run = |log: &str| {
        // The CSV on stdout, the log and the summary on stderr.
        let out = Command::new(env!("CARGO_BIN_EXE_cardex"))
            .arg("extract")
            .arg(dir.path())
            .args(["--field", "author", "--ocr-lang", "eng"])
            .env("RUST_LOG", log)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let csv = String::from_utf8_lossy(&out.stdout);
        assert_eq!(csv.lines().count(), 2, "the CSV alone on stdout:\n{csv}");
        assert!(csv.starts_with("card_id,"), "{csv}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run("info");
    assert!(
        !quiet.contains("too small") && !quiet.contains("cannot be recognized"),
        "Tesseract's messages on the terminal:\n{quiet}"
    );
    assert!(quiet.contains("1 cards: 1 done"), "{quiet}");
    let logged = run("info,tesseract=debug,cardex_engine=debug");
    // Without usable pseudo-terminals (some containers) the messages are
    // dropped instead, and the log says so; the terminal stays clean.
    if logged.contains("Tesseract's messages are dropped") {
        eprintln!("no pseudo-terminal here: Tesseract's messages are dropped, not logged");
        return;
    }
    let line = logged
        .lines()
        .find(|l| l.contains("Line cannot be recognized!!"))
        .unwrap_or_else(|| panic!("not in the log:\n{logged}"));
    assert!(
        line.contains("DEBUG") && line.contains("tesseract"),
        "{line}"
    );
}

/// `-o out.xlsx` writes a workbook; the summary gives the tokens and, with
/// prices, the cost; `--max-tokens` stops the run at its budget, the
/// results so far written.
#[tokio::test(flavor = "multi_thread")]
async fn a_workbook_the_cost_and_a_budget() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let config = vlm_sim::SimConfig {
        slots: 2,
        latency: std::time::Duration::from_millis(30),
        ..Default::default()
    };
    tokio::spawn(async move { vlm_sim::serve(listener, config, std::future::pending()).await });
    let dir = tempfile::tempdir().unwrap();
    let cards = dir.path().join("cards");
    std::fs::create_dir(&cards).unwrap();
    for i in 0..12 {
        std::fs::write(
            cards.join(format!("c{i:02}.jpg")),
            cardex_testkit::jpeg(9000 + i),
        )
        .unwrap();
    }
    let run = |out: std::path::PathBuf, extra: Vec<&'static str>| {
        let (cards, url) = (cards.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_cardex"))
                .arg("extract")
                .arg(&cards)
                .args([
                    "--field",
                    "title",
                    "--vlm-model",
                    "sim-vlm",
                    "--cross-check",
                    "off",
                ])
                .args(["--vlm-url", &url])
                .args(extra)
                .arg("-o")
                .arg(&out)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
    };
    let book = dir.path().join("out.xlsx");
    let result = run(
        book.clone(),
        vec!["--vlm-price-input", "1", "--vlm-price-output", "2"],
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let bytes = std::fs::read(&book).unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"), "a zip archive");
    let names = String::from_utf8_lossy(&bytes);
    assert!(names.contains("xl/worksheets/sheet1.xml"), "a workbook");
    assert!(
        stderr.contains(" tokens (") && stderr.contains("in 12 requests, $"),
        "{stderr}"
    );

    let partial = dir.path().join("partial.csv");
    let result = run(partial.clone(), vec!["--max-tokens", "600"])
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success(), "{stderr}");
    assert!(stderr.contains("budget"), "{stderr}");
    let csv = std::fs::read_to_string(&partial).unwrap();
    let done = csv.lines().filter(|l| l.contains(",done,")).count();
    assert!(done > 0 && done < 12, "{csv}");
}

/// A PDF in the folder is a card per page, each read as its own page
/// (the simulator's answer for that page's JPEG), named `<file> p. N`.
#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_in_the_folder_is_a_card_per_page() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        vlm_sim::serve(listener, Default::default(), std::future::pending()).await
    });
    let dir = tempfile::tempdir().unwrap();
    let pages: Vec<Vec<u8>> = (0..3).map(|i| cardex_testkit::jpeg(8100 + i)).collect();
    std::fs::write(
        dir.path().join("box.pdf"),
        cardex_testkit::pdf::jpeg_pdf(&pages),
    )
    .unwrap();
    let single = cardex_testkit::jpeg(8200);
    std::fs::write(dir.path().join("loose.jpg"), &single).unwrap();
    let out = dir.path().join("r.jsonl");
    let result = tokio::task::spawn_blocking({
        let (dir, out) = (dir.path().to_owned(), out.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_cardex"))
                .arg("extract")
                .arg(&dir)
                .args(["--field", "title", "--vlm-model", "sim-vlm"])
                .args(["--vlm-url", &url])
                .arg("-o")
                .arg(&out)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fields = vec![("title".to_owned(), "string".to_owned())];
    let answer = |img: &[u8]| Value::Object(vlm_sim::answer_for(img, &fields));
    assert_eq!(rows.len(), 4);
    for (i, row) in rows[..3].iter().enumerate() {
        assert_eq!(row["original_name"], format!("box.pdf p. {}", i + 1));
        assert_eq!(row["source_name"], "box.pdf");
        assert_eq!(row["page"], i + 1);
        assert_eq!(row["result"], answer(&pages[i]), "page {}", i + 1);
    }
    assert_eq!(rows[3]["original_name"], "loose.jpg");
    assert_eq!(rows[3]["page"], Value::Null);
    assert_eq!(rows[3]["result"], answer(&single));
}
