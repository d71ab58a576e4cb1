//! Review and corrections (DESIGN §12) through the real router: the
//! machine's values never change, corrections are checked by their field's
//! type and kept apart with a history, exports hold the reviewed values
//! (JSON, CSV, a real XLSX workbook), the queue pages in a stable order,
//! reviews go out live, and a card can be reviewed while its batch runs.

mod common;

use std::io::Read;

use common::*;
use serde_json::{Value, json};

fn review_fields() -> Value {
    json!([
        {"name": "title", "description": "The title", "type": "text"},
        {"name": "year", "description": "Year of publication", "type": "integer"},
        {"name": "call_number", "description": "The shelf mark", "type": "text"}
    ])
}

/// A finished batch of `n` cards read by the simulator, one of them
/// failing (an answer it never gets right).
async fn finished_batch(n: u32) -> (TestServer, String) {
    let config = sim_config(
        &start_sim(vlm_sim::SimConfig {
            bad_answer_rate: 0.15,
            ..Default::default()
        })
        .await,
    );
    let mut config = config;
    config.runner.retry.max_attempts = 1;
    let srv = TestServer::with_config(config).await;
    let id = srv.started_batch(&review_fields(), &cards(n)).await;
    srv.wait_finished(&id).await;
    (srv, id)
}

fn done_and_failed(rows: &[Value]) -> (i64, i64) {
    let id = |state: &str| {
        rows.iter()
            .find(|r| r["state"] == state)
            .unwrap_or_else(|| panic!("no {state} card"))["card_id"]
            .as_i64()
            .unwrap()
    };
    (id("done"), id("failed"))
}

#[tokio::test(flavor = "multi_thread")]
async fn corrections_are_checked_kept_apart_and_exported() {
    let (srv, id) = finished_batch(20).await;
    let rows = srv.results(&id).await;
    let (done, failed) = done_and_failed(&rows);
    let url = |card: i64| format!("/api/batches/{id}/cards/{card}/review");

    // Bad reviews are refused, naming the field, and change nothing.
    let (s, b) = srv
        .put(
            &url(done),
            json!({"status": "verified", "corrections": {"isbn": "1"}}),
        )
        .await;
    assert_error(s, &b, 422, "unknown_field");
    assert_eq!(b["field"], "isbn", "{b}");
    let (s, b) = srv
        .put(
            &url(done),
            json!({"status": "verified", "corrections": {"year": "nineteen"}}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_value");
    assert_eq!(b["field"], "year", "{b}");
    let (s, b) = srv.put(&url(done), json!({"status": "done"})).await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = srv
        .put(
            &url(done),
            json!({"status": "verified", "note": "x".repeat(2001)}),
        )
        .await;
    assert_error(s, &b, 422, "invalid_note");
    let (s, b) = srv.put(&url(999_999), json!({"status": "verified"})).await;
    assert_error(s, &b, 404, "card_not_found");
    let (_, card) = srv.get(&format!("/api/batches/{id}/cards/{done}")).await;
    assert!(
        card["review"].is_null() && card["history"] == json!([]),
        "{card}"
    );

    // A correction: read by its type ("1,931" is 1931 for a whole number),
    // over the machine's values, which stay as they were.
    let machine = card["machine"].clone();
    let (s, reviewed) = srv
        .put(
            &url(done),
            json!({"status": "needs_attention", "corrections": {"year": "1,931", "call_number": "00123"},
                   "note": "year smudged"}),
        )
        .await;
    assert_eq!(s, 200, "{reviewed}");
    assert_eq!(reviewed["machine"], machine);
    assert_eq!(
        reviewed["corrections"],
        json!({"year": 1931, "call_number": "00123"})
    );
    assert_eq!(reviewed["values"]["year"], 1931);
    assert_eq!(reviewed["values"]["title"], machine["title"]);
    assert_eq!(reviewed["review"]["status"], "needs_attention");
    // Verified later, corrections and note kept when left out.
    let (s, reviewed) = srv.put(&url(done), json!({"status": "verified"})).await;
    assert_eq!(s, 200);
    assert_eq!(reviewed["corrections"]["call_number"], "00123");
    assert_eq!(reviewed["review"]["note"], "year smudged");
    let history = reviewed["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["status"], "needs_attention");
    assert_eq!(history[1]["status"], "verified");

    // A failed card transcribed by hand.
    let (s, by_hand) = srv
        .put(
            &url(failed),
            json!({"status": "verified", "corrections": {"title": "Moby-Dick", "year": 1851}}),
        )
        .await;
    assert_eq!(s, 200, "{by_hand}");
    assert!(by_hand["machine"].is_null());
    assert_eq!(
        by_hand["values"],
        json!({"title": "Moby-Dick", "year": 1851})
    );

    // The counts.
    let (_, batch) = srv.get(&format!("/api/batches/{id}")).await;
    assert_eq!(batch["counts"]["verified"], 2, "{batch}");
    assert_eq!(batch["counts"]["needs_attention"], 0);
    assert_eq!(batch["counts"]["corrected"], 2);

    // JSON exports hold the reviewed values, the review, and with
    // `include=machine` the machine's.
    let rows = srv.results(&id).await;
    let row = rows.iter().find(|r| r["card_id"] == done).unwrap();
    assert_eq!(row["result"]["year"], 1931);
    assert_eq!(row["review"]["status"], "verified");
    assert!(row.get("machine").is_none());
    let untouched = rows
        .iter()
        .find(|r| r["card_id"] != done && r["state"] == "done")
        .unwrap();
    assert!(untouched["review"].is_null(), "{untouched}");
    let (_, with_machine) = srv
        .get(&format!("/api/batches/{id}/results?include=machine"))
        .await;
    let row = with_machine
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["card_id"] == done)
        .unwrap();
    assert_eq!(row["machine"], machine);

    // CSV, with the review and machine columns asked for.
    let csv = srv
        .export(&id, "format=csv&include=review,machine,flags,confidence")
        .await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "card_id,original_name,state,title,year,call_number,error,source_name,page,\
         review_status,review_note,\
         title_machine,year_machine,call_number_machine,flags,title_confidence,year_confidence,\
         call_number_confidence"
    );
    let line = lines.find(|l| l.starts_with(&format!("{done},"))).unwrap();
    assert!(
        line.contains(&format!(
            ",1931,00123,,{},,verified,year smudged,",
            row["original_name"].as_str().unwrap()
        )),
        "{line}"
    );

    // XLSX: a real workbook; the corrected call number stays text, the
    // year is a number, the header is bold and frozen.
    let res = reqwest::get(srv.url(&format!("/api/batches/{id}/results?format=xlsx")))
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let book = Workbook::read(&res.bytes().await.unwrap());
    let header = book.row(1);
    assert_eq!(
        header,
        [
            "card_id",
            "original_name",
            "state",
            "title",
            "year",
            "call_number",
            "error",
            "source_name",
            "page"
        ]
    );
    let r = book.row_of(&done.to_string());
    assert_eq!(book.cell(&format!("F{r}")), Cell::Text("00123".into()));
    assert_eq!(book.cell(&format!("E{r}")), Cell::Number(1931.0));
    assert_eq!(book.cell(&format!("A{r}")), Cell::Number(done as f64));
    assert!(book.sheet.contains(r#"ySplit="1""#) && book.sheet.contains(r#"state="frozen""#));
    assert!(book.styles.contains("<b/>"), "a bold header");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_pages_in_a_stable_order_most_in_need_first() {
    let (srv, id) = finished_batch(30).await;
    let queue = |q: &str| {
        let srv = &srv;
        let id = &id;
        let q = q.to_owned();
        async move {
            let (s, b) = srv
                .get(&format!("/api/batches/{id}/review-queue?{q}"))
                .await;
            assert_eq!(s, 200, "{b}");
            b
        }
    };
    let whole = queue("filter=all&limit=500").await;
    let all: Vec<Value> = whole["cards"].as_array().unwrap().clone();
    assert_eq!(all.len(), 30);
    assert!(whole["next"].is_null());
    // Failed first, then flagged, then by least confidence, then by id.
    let tier = |c: &Value| {
        if c["state"] == "failed" {
            0
        } else if c["flags"].as_u64().unwrap() > 0 {
            1
        } else {
            2
        }
    };
    for w in all.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let key = |c: &Value| {
            (
                tier(c),
                c["min_confidence"].as_f64().unwrap_or(2.0),
                c["card_id"].as_i64().unwrap(),
            )
        };
        assert!(key(a) < key(b), "{a} before {b}");
    }
    assert_eq!(all[0]["state"], "failed");

    // Pages of 7 walk the same order, each card once.
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("filter=all&limit=7&after={a}"),
            None => "filter=all&limit=7".to_owned(),
        };
        let page = queue(&q).await;
        walked.extend(page["cards"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, all);

    // Reviewed cards leave the default filter; the others stay in order.
    let first = all[0]["card_id"].as_i64().unwrap();
    let (s, _) = srv
        .put(
            &format!("/api/batches/{id}/cards/{first}/review"),
            json!({"status": "needs_attention"}),
        )
        .await;
    assert_eq!(s, 200);
    let unreviewed = queue("").await;
    assert_eq!(unreviewed["cards"].as_array().unwrap().len(), 29);
    assert_eq!(unreviewed["cards"][0], all[1]);
    let attention = queue("filter=needs_attention").await;
    assert_eq!(attention["cards"][0]["card_id"], first);
    let failed = queue("filter=failed&limit=500").await;
    assert!(
        failed["cards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] == "failed")
    );
    let flagged = queue("filter=flagged&limit=500").await;
    assert!(
        flagged["cards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["flags"].as_u64().unwrap() > 0)
    );

    for bad in ["after=nonsense", "limit=0", "limit=501", "filter=some"] {
        let (s, b) = srv
            .get(&format!("/api/batches/{id}/review-queue?{bad}"))
            .await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reviews_go_out_live_and_work_while_the_batch_runs() {
    let srv =
        TestServer::with_config(paced_sim(1, std::time::Duration::from_millis(150)).await).await;
    let id = srv.started_batch(&review_fields(), &cards(20)).await;
    let first = srv
        .wait_for(&id, "a card done", |b| {
            b["counts"]["done"].as_u64().unwrap() >= 1
        })
        .await;
    assert_eq!(first["state"], "running");
    let mut ws = connect(&srv, &id, None).await;
    let _snapshot = next(&mut ws).await.unwrap();

    let rows = srv.results(&id).await;
    let done = rows.iter().find(|r| r["state"] == "done").unwrap()["card_id"]
        .as_i64()
        .unwrap();
    let pending = rows.iter().find(|r| r["state"] == "pending").unwrap()["card_id"]
        .as_i64()
        .unwrap();
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/cards/{pending}/review"),
            json!({"status": "verified"}),
        )
        .await;
    assert_error(s, &b, 409, "card_not_finished");
    let (s, b) = srv
        .put(
            &format!("/api/batches/{id}/cards/{done}/review"),
            json!({"status": "verified", "corrections": {"title": "Checked"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // The other page hears of it.
    let event = loop {
        let ev = next(&mut ws).await.expect("the stream goes on");
        if ev["type"] == "card_reviewed" {
            break ev;
        }
    };
    assert_eq!(event["card_id"], done);
    assert_eq!(event["review"]["status"], "verified");
    assert_eq!(event["values"]["title"], "Checked");
    // And a page that comes back later gets it replayed.
    let mut late = connect(&srv, &id, Some(0)).await;
    let replayed = loop {
        let ev = next(&mut late).await.expect("replayed");
        if ev["type"] == "card_reviewed" {
            break ev;
        }
    };
    assert_eq!(replayed["seq"], event["seq"]);
}

/// A cell of the workbook.
#[derive(Debug, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

/// Just enough of an XLSX reader to check what cardex wrote: the sheet's
/// XML, its shared strings, and the styles.
struct Workbook {
    sheet: String,
    strings: Vec<String>,
    styles: String,
}

impl Workbook {
    fn read(bytes: &[u8]) -> Self {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut part = |name: &str| {
            let mut s = String::new();
            if let Ok(mut f) = zip.by_name(name) {
                f.read_to_string(&mut s).unwrap();
            }
            s
        };
        let sheet = part("xl/worksheets/sheet1.xml");
        let shared = part("xl/sharedStrings.xml");
        let styles = part("xl/styles.xml");
        let strings = shared
            .split("<si>")
            .skip(1)
            .map(|si| {
                let t = si.split_once('>').map_or("", |(_, rest)| rest);
                let t = t.split("</t>").next().unwrap_or("");
                t.replace("&amp;", "&")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
            })
            .collect();
        Self {
            sheet,
            strings,
            styles,
        }
    }

    fn cell(&self, at: &str) -> Cell {
        let Some(start) = self.sheet.find(&format!(r#"<c r="{at}""#)) else {
            return Cell::Empty;
        };
        let rest = &self.sheet[start..];
        let end = rest.find("</c>").or_else(|| rest.find("/>")).unwrap();
        let xml = &rest[..end];
        let Some(v) = xml
            .split_once("<v>")
            .and_then(|(_, v)| v.split_once("</v>"))
            .map(|(v, _)| v)
        else {
            return Cell::Empty;
        };
        if xml.contains(r#"t="s""#) {
            Cell::Text(self.strings[v.parse::<usize>().unwrap()].clone())
        } else {
            Cell::Number(v.parse().unwrap())
        }
    }

    /// Row `r`'s cells as text, up to the first empty one.
    fn row(&self, r: usize) -> Vec<String> {
        (b'A'..=b'Z')
            .map(|c| self.cell(&format!("{}{r}", c as char)))
            .take_while(|c| *c != Cell::Empty)
            .map(|c| match c {
                Cell::Text(s) => s,
                Cell::Number(n) => n.to_string(),
                Cell::Empty => unreachable!(),
            })
            .collect()
    }

    /// The row whose first cell reads `card_id`.
    fn row_of(&self, card_id: &str) -> usize {
        (2..10_000)
            .find(|r| self.cell(&format!("A{r}")) == Cell::Number(card_id.parse().unwrap()))
            .expect("the card's row")
    }
}
