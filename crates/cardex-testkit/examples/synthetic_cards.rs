//! Writes synthetic catalog cards and their truth to a folder, to try
//! `cardex extract` or the simulator on:
//! `cargo run -p cardex-testkit --example synthetic_cards -- DIR [N] [SEED]`.
//! Beside the images, `truth.jsonl` has one `{file, fields}` line per card.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: synthetic_cards DIR [N] [SEED]")?);
    let n: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let seed: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    std::fs::create_dir_all(&dir)?;
    let mut truth = std::fs::File::create(dir.join("truth.jsonl"))?;
    for card in cardex_testkit::cards::synthetic_cards(n, seed)? {
        std::fs::write(dir.join(&card.name), &card.png)?;
        writeln!(
            truth,
            "{}",
            serde_json::json!({"file": card.name, "fields": card.fields})
        )?;
    }
    println!("{n} cards written to {}", dir.display());
    Ok(())
}
