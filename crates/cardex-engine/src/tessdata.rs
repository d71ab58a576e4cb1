//! Which Tesseract languages are installed: the `*.traineddata` files of
//! the folder Tesseract reads (`TESSDATA_PREFIX`, else where Debian and
//! other distributions put them), so the UI can offer only languages that
//! will load.

use std::path::{Path, PathBuf};

/// Where Tesseract's language data may be, most specific first.
fn tessdata_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(prefix) = std::env::var_os("TESSDATA_PREFIX") {
        let prefix = PathBuf::from(prefix);
        dirs.push(prefix.join("tessdata"));
        dirs.push(prefix);
    }
    for root in ["/usr/share/tesseract-ocr", "/usr/local/share/tesseract-ocr"] {
        if let Ok(versions) = std::fs::read_dir(root) {
            let mut found: Vec<PathBuf> = versions
                .filter_map(Result::ok)
                .map(|v| v.path().join("tessdata"))
                .collect();
            found.sort();
            dirs.extend(found.into_iter().rev()); // the newest version first
        }
    }
    dirs.extend(["/usr/share/tessdata", "/usr/local/share/tessdata"].map(PathBuf::from));
    dirs
}

/// The installed language codes (`deu`, `eng`, …), sorted; empty when no
/// language data is found. `osd` (script detection) is not a language.
pub fn installed_languages() -> Vec<String> {
    tessdata_dirs()
        .iter()
        .map(|d| languages_in(d))
        .find(|langs| !langs.is_empty())
        .unwrap_or_default()
}

fn languages_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut langs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".traineddata")
                .map(str::to_owned)
        })
        .filter(|l| l != "osd")
        .collect();
    langs.sort();
    langs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_the_traineddata_files_but_osd() {
        let tmp = tempfile::tempdir().unwrap();
        for f in [
            "eng.traineddata",
            "deu.traineddata",
            "osd.traineddata",
            "pdf.ttf",
        ] {
            std::fs::write(tmp.path().join(f), b"").unwrap();
        }
        assert_eq!(languages_in(tmp.path()), ["deu", "eng"]);
        assert!(languages_in(&tmp.path().join("missing")).is_empty());
    }
}
