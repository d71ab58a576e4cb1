//! A PDF's pages as images, through poppler's tools (Debian's
//! `poppler-utils`), one bounded subprocess per step and per page, reading
//! the file where it lies on disk, so memory stays flat however many pages
//! it has:
//!
//! - `pdfinfo` counts the pages, gives each page's size and rotation, and
//!   tells a password-protected file from a damaged one;
//! - `pdfimages -list` tells which pages are exactly one image covering
//!   the page (a scan): that image is taken as it is (`pdfimages -j`
//!   writes a JPEG's bytes unchanged; other encodings — JPEG 2000, CCITT,
//!   JBIG2, Flate — are decoded to PNG, losslessly);
//! - every other page (vector text, several images, a rotated page) is
//!   rendered at 300 dpi to PNG by `pdftoppm`.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use super::tool::{self, Output, ToolError, ToolLimits};
use super::{PageLimits, PagesError};
use crate::image::ImageError;

/// Resolution of rendered pages.
pub const RENDER_DPI: u32 = 300;

/// How one page becomes an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePlan {
    /// The page is one image; take it as it is.
    Image {
        /// Its width in pixels.
        width: u64,
        /// Its height in pixels.
        height: u64,
    },
    /// Render the page at [`RENDER_DPI`].
    Render {
        /// The rendering's width in pixels.
        width: u64,
        /// The rendering's height in pixels.
        height: u64,
    },
}

impl PagePlan {
    /// The pixels the page's image will have.
    pub fn pixels(self) -> (u64, u64) {
        match self {
            Self::Image { width, height } | Self::Render { width, height } => (width, height),
        }
    }
}

/// Reads what a PDF holds: one plan per page, in page order.
pub async fn plan(path: &Path, limits: &PageLimits) -> Result<Vec<PagePlan>, PagesError> {
    let info = pdfinfo(path, limits).await?;
    let images = pdfimages_list(path, limits.tools).await?;
    Ok(info
        .pages
        .iter()
        .enumerate()
        .map(|(i, page)| plan_page(page, images.iter().filter(|r| r.page == i as u64 + 1)))
        .collect())
}

/// Writes page `number` (from 1) of the PDF at `path` into the empty
/// folder `dir`; returns the image file's path.
pub async fn write_page(
    path: &Path,
    number: u64,
    plan: PagePlan,
    dir: &Path,
    limits: &PageLimits,
) -> Result<PathBuf, PagesError> {
    let (width, height) = plan.pixels();
    if width.saturating_mul(height) > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width: u32::try_from(width).unwrap_or(u32::MAX),
            height: u32::try_from(height).unwrap_or(u32::MAX),
            limit: limits.max_pixels,
        }
        .into());
    }
    let page = number.to_string();
    if let PagePlan::Image { .. } = plan {
        let out = poppler(
            "pdfimages",
            &[
                "-f".into(),
                page.clone().into(),
                "-l".into(),
                page.clone().into(),
                "-j".into(),
                "-png".into(),
                path.into(),
                dir.join("page").into(),
            ],
            limits.tools,
        )
        .await?;
        checked(out)?;
        // What `-list` saw as one image is one file; anything else (a
        // page whose image the tool splits) is rendered instead.
        if let Some(file) = only_file(dir)? {
            return Ok(file);
        }
        clear(dir)?;
    }
    let out = poppler(
        "pdftoppm",
        &[
            "-r".into(),
            RENDER_DPI.to_string().into(),
            "-f".into(),
            page.clone().into(),
            "-l".into(),
            page.into(),
            "-cropbox".into(),
            "-png".into(),
            "-singlefile".into(),
            path.into(),
            dir.join("page").into(),
        ],
        limits.tools,
    )
    .await?;
    checked(out)?;
    only_file(dir)?.ok_or_else(|| PagesError::Damaged(format!("page {number} could not be drawn")))
}

/// One page as `pdfinfo` describes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PageInfo {
    /// Width and height in points (1/72 inch).
    size: (f64, f64),
    /// Rotation in degrees.
    rotation: i64,
}

#[derive(Debug, PartialEq)]
struct DocInfo {
    pages: Vec<PageInfo>,
}

/// One line of `pdfimages -list`.
#[derive(Debug, Clone, PartialEq)]
struct ImageRow {
    page: u64,
    kind: String,
    width: u64,
    height: u64,
    ppi: (f64, f64),
}

async fn pdfinfo(path: &Path, limits: &PageLimits) -> Result<DocInfo, PagesError> {
    // The pages' sizes come with the count, up to the limit: one run.
    let out = poppler(
        "pdfinfo",
        &[
            "-f".into(),
            "1".into(),
            "-l".into(),
            limits.max_pages.max(1).to_string().into(),
            path.into(),
        ],
        limits.tools,
    )
    .await?;
    let out = checked(out)?;
    parse_info(&String::from_utf8_lossy(&out.stdout), limits.max_pages)
}

async fn pdfimages_list(path: &Path, limits: ToolLimits) -> Result<Vec<ImageRow>, PagesError> {
    let out = poppler("pdfimages", &["-list".into(), path.into()], limits).await?;
    let out = checked(out)?;
    Ok(parse_list(&String::from_utf8_lossy(&out.stdout)))
}

/// Runs a poppler tool, its failures said the PDF's way.
async fn poppler(
    program: &'static str,
    args: &[OsString],
    limits: ToolLimits,
) -> Result<Output, PagesError> {
    tool::run(program, args, limits).await.map_err(|e| match e {
        ToolError::Missing(_) => PagesError::Unsupported(e.to_string()),
        ToolError::TimedOut(_) | ToolError::TooMuchOutput => PagesError::TooComplex(e.to_string()),
        ToolError::Io(e) => PagesError::Io(e),
    })
}

/// A run's output when it succeeded; otherwise why the PDF cannot be read.
fn checked(out: Output) -> Result<Output, PagesError> {
    // Out of memory under the limit: poppler may say so and go on, ending
    // well with a page half drawn; killed by a signal: the memory or CPU
    // limit (a failed allocation aborts the tool), never a parse error.
    if out.status.signal().is_some()
        || out.stderr.contains("Out of memory")
        || out.stderr.contains("bad_alloc")
    {
        return Err(PagesError::TooComplex(
            "it needed more memory or time than a page may take and was stopped".into(),
        ));
    }
    if out.status.success() {
        return Ok(out);
    }
    if out.stderr.contains("Incorrect password") {
        return Err(PagesError::Encrypted);
    }
    let why = out
        .stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("the PDF could not be read")
        .to_owned();
    Err(PagesError::Damaged(why))
}

fn parse_info(text: &str, max_pages: u64) -> Result<DocInfo, PagesError> {
    let pages: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| PagesError::Damaged("the PDF's page count cannot be read".into()))?;
    if pages == 0 {
        return Err(PagesError::Damaged("the PDF has no pages".into()));
    }
    if pages > max_pages {
        return Err(PagesError::TooManyPages { limit: max_pages });
    }
    let mut out = vec![
        PageInfo {
            size: (0.0, 0.0),
            rotation: 0,
        };
        pages as usize
    ];
    // `Page    3 size:  612 x 792 pts (letter)` and `Page    3 rot:   90`.
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("Page ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(n), Some(what)) = (
            words.next().and_then(|n| n.parse::<u64>().ok()),
            words.next(),
        ) else {
            continue;
        };
        let Some(page) = n.checked_sub(1).and_then(|i| out.get_mut(i as usize)) else {
            continue;
        };
        match what {
            "size:" => {
                let w = words.next().and_then(|v| v.parse::<f64>().ok());
                let h = words.nth(1).and_then(|v| v.parse::<f64>().ok());
                if let (Some(w), Some(h)) = (w, h) {
                    page.size = (w, h);
                }
            }
            "rot:" => page.rotation = words.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    Ok(DocInfo { pages: out })
}

fn parse_list(text: &str) -> Vec<ImageRow> {
    // page num type width height color comp bpc enc interp object ID x-ppi y-ppi size ratio
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 14 {
                return None;
            }
            Some(ImageRow {
                page: cols[0].parse().ok()?,
                kind: cols[2].to_owned(),
                width: cols[3].parse().ok()?,
                height: cols[4].parse().ok()?,
                ppi: (
                    cols[12].parse().unwrap_or(0.0),
                    cols[13].parse().unwrap_or(0.0),
                ),
            })
        })
        .collect()
}

/// A page is taken as its one image when that image is all there is on
/// it (no mask, no second image), it is upright, and it covers the page
/// (within 10%: scanners pad or crop a little); else it is rendered.
fn plan_page<'a>(page: &PageInfo, images: impl Iterator<Item = &'a ImageRow>) -> PagePlan {
    let images: Vec<&ImageRow> = images.collect();
    let (w_pt, h_pt) = page.size;
    if let [only] = images[..]
        && only.kind == "image"
        && page.rotation.rem_euclid(360) == 0
        && only.ppi.0 > 0.0
        && only.ppi.1 > 0.0
    {
        let covers = |pixels: u64, ppi: f64, points: f64| {
            let shown = pixels as f64 / ppi * 72.0;
            points > 0.0 && (0.9..=1.1).contains(&(shown / points))
        };
        if covers(only.width, only.ppi.0, w_pt) && covers(only.height, only.ppi.1, h_pt) {
            return PagePlan::Image {
                width: only.width,
                height: only.height,
            };
        }
    }
    let px = |points: f64| (points.max(0.0) / 72.0 * f64::from(RENDER_DPI)).ceil() as u64;
    let (mut width, mut height) = (px(w_pt), px(h_pt));
    if page.rotation.rem_euclid(180) == 90 {
        std::mem::swap(&mut width, &mut height);
    }
    PagePlan::Render { width, height }
}

/// The one file in `dir`, if there is exactly one.
fn only_file(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut files = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(match files.len() {
        1 => files.pop(),
        _ => None,
    })
}

/// Empties `dir`.
fn clear(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "Producer:        cardex\nPages:           3\nEncrypted:       no\n\
        Page    1 size:  754 x 458 pts\nPage    1 rot:   0\n\
        Page    2 size:  612 x 792 pts (letter)\nPage    2 rot:   90\n\
        Page    3 size:  612 x 792 pts (letter)\nPage    3 rot:   0\nFile size: 1 bytes\n";

    const LIST: &str = "page   num  type   width height color comp bpc  enc interp  object ID x-ppi y-ppi size ratio\n\
        --------------------------------------------------------------------------------------------\n   \
        1     0 image     754   458  rgb     3   8  jpeg   no         4  0    72    72 19.2K 1.9%\n   \
        2     1 image    2550  3300  gray    1   8  jpx    no         7  0   300   300 16.1K 1.5%\n   \
        3     2 image     100   100  rgb     3   8  image  no        10  0    72    72 69.3K 1.7%\n";

    #[test]
    fn pages_are_read_from_pdfinfo() {
        let info = parse_info(INFO, 5000).unwrap();
        assert_eq!(info.pages.len(), 3);
        assert_eq!(info.pages[1].size, (612.0, 792.0));
        assert_eq!(info.pages[1].rotation, 90);
        assert!(matches!(
            parse_info(INFO, 2),
            Err(PagesError::TooManyPages { limit: 2 })
        ));
        assert!(matches!(
            parse_info("Pages: 0\n", 10),
            Err(PagesError::Damaged(_))
        ));
    }

    #[test]
    fn a_page_that_is_one_image_is_taken_as_it_is_else_rendered() {
        let info = parse_info(INFO, 5000).unwrap();
        let rows = parse_list(LIST);
        assert_eq!(rows.len(), 3);
        let plans: Vec<PagePlan> = (1..=3)
            .map(|p| {
                plan_page(
                    &info.pages[p - 1],
                    rows.iter().filter(|r| r.page == p as u64),
                )
            })
            .collect();
        assert_eq!(
            plans,
            [
                PagePlan::Image {
                    width: 754,
                    height: 458
                },
                // Rotated: rendered, on its side.
                PagePlan::Render {
                    width: 3300,
                    height: 2550
                },
                // A small picture on a letter page: rendered.
                PagePlan::Render {
                    width: 2550,
                    height: 3300
                },
            ]
        );
    }
}
