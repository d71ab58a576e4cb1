//! A multi-page TIFF's pages: found by walking the file's image
//! directories with the `tiff` crate (reduced-resolution copies, i.e.
//! thumbnails, are not pages), each decoded by the `image` crate exactly as
//! an uploaded single-page TIFF is, and written as a PNG.
//!
//! Why PNG and not a single-page TIFF: PNG is lossless for every bit
//! depth the decoder gives (1-bit fax pages become 8-bit grey), compressed
//! (the `image` crate writes TIFF uncompressed, tens of MB a page), and
//! shown by every browser as the page's original.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use image::codecs::tiff::TiffDecoder;
use image::{DynamicImage, ImageDecoder};
use tiff::decoder::Decoder;
use tiff::tags::Tag;

use super::PagesError;
use crate::image::{ImageError, decode_limits};

/// The offsets of the page directories of the TIFF at `path`, in page
/// order; refused once there are more than `max_pages`, or when a page
/// after the first cannot be read (rather than dropping it silently). No
/// pages when not even the first can be: the image check says why.
pub fn pages(path: &Path, max_pages: u64) -> Result<Vec<u64>, PagesError> {
    let Ok(mut decoder) = Decoder::new(BufReader::new(File::open(path)?)) else {
        return Ok(Vec::new());
    };
    let mut pages = Vec::new();
    loop {
        // NewSubfileType bit 0: a reduced-resolution copy of another page.
        let reduced = decoder
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .ok()
            .flatten()
            .is_some_and(|t| t & 1 == 1);
        if !reduced && let Some(ifd) = decoder.ifd_pointer() {
            pages.push(ifd.0);
            if pages.len() as u64 > max_pages {
                return Err(PagesError::TooManyPages { limit: max_pages });
            }
        }
        if !decoder.more_images() {
            return Ok(pages);
        }
        decoder.next_image().map_err(|e| {
            PagesError::Image(ImageError::Corrupt(format!(
                "the TIFF's directory after page {} cannot be read: {e}",
                pages.len()
            )))
        })?;
    }
}

/// Writes the page whose directory is at `ifd` to `dir/page.png`, upright
/// (its orientation tag applied), refusing more than `max_pixels`.
pub fn write_page(
    path: &Path,
    ifd: u64,
    dir: &Path,
    max_pixels: u64,
) -> Result<PathBuf, PagesError> {
    let corrupt = |e: image::ImageError| PagesError::Image(ImageError::Corrupt(e.to_string()));
    let reader = BufReader::new(FromDirectory::open(path, ifd)?);
    let mut decoder = TiffDecoder::new(reader).map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    ImageError::check_pixels(width, height, max_pixels)?;
    decoder
        .set_limits(decode_limits(max_pixels))
        .map_err(corrupt)?;
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut page = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    page.apply_orientation(orientation);
    let out = dir.join("page.png");
    let mut file = BufWriter::new(File::create(&out)?);
    page.write_to(&mut file, image::ImageFormat::Png)
        .map_err(|e| match e {
            image::ImageError::IoError(e) => PagesError::Io(e),
            other => corrupt(other),
        })?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(out)
}

/// The TIFF file as if its first directory were the one at `ifd`: the
/// header's first-directory offset reads as `ifd`, every other byte as it
/// is. So one page of a multi-page file is decoded with the very code a
/// single-page upload goes through, without copying the file.
struct FromDirectory {
    file: File,
    header: Vec<u8>,
    pos: u64,
}

impl FromDirectory {
    fn open(path: &Path, ifd: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8])?;
        let little = match &header[..2] {
            b"II" => true,
            b"MM" => false,
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a TIFF")),
        };
        let magic = if little {
            u16::from_le_bytes([header[2], header[3]])
        } else {
            u16::from_be_bytes([header[2], header[3]])
        };
        let header = match magic {
            42 => {
                let ifd = u32::try_from(ifd)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "offset too large"))?;
                let bytes = if little {
                    ifd.to_le_bytes()
                } else {
                    ifd.to_be_bytes()
                };
                header[4..8].copy_from_slice(&bytes);
                header[..8].to_vec()
            }
            // BigTIFF: 8-byte offsets, the first at byte 8.
            43 => {
                file.read_exact(&mut header[8..16])?;
                let bytes = if little {
                    ifd.to_le_bytes()
                } else {
                    ifd.to_be_bytes()
                };
                header[8..16].copy_from_slice(&bytes);
                header.to_vec()
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a TIFF")),
        };
        file.seek(SeekFrom::Start(0))?;
        Ok(Self {
            file,
            header,
            pos: 0,
        })
    }
}

impl Read for FromDirectory {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if let Some(head) = self.header.get(self.pos as usize..)
            && !head.is_empty()
        {
            let n = head.len().min(buf.len());
            buf[..n].copy_from_slice(&head[..n]);
            self.file.seek(SeekFrom::Current(n as i64))?;
            n
        } else {
            self.file.read(buf)?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FromDirectory {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tiff::encoder::{TiffEncoder, TiffKind, colortype::Gray8};

    use super::*;

    /// A TIFF of grey pages of `sizes`, the `reduced` ones marked as
    /// reduced-resolution copies.
    fn tiff_of<K: TiffKind>(
        mut encoder: TiffEncoder<&mut Cursor<Vec<u8>>, K>,
        sizes: &[(u32, u32, bool)],
    ) {
        for (i, &(w, h, reduced)) in sizes.iter().enumerate() {
            let mut image = encoder.new_image::<Gray8>(w, h).unwrap();
            if reduced {
                image
                    .encoder()
                    .write_tag(Tag::NewSubfileType, 1u32)
                    .unwrap();
            }
            let level = (i as u8 + 1) * 50;
            image.write_data(&vec![level; (w * h) as usize]).unwrap();
        }
    }

    fn pages_of(bytes: Vec<u8>) -> Vec<(u32, u32, u8)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scans.tif");
        std::fs::write(&path, bytes).unwrap();
        pages(&path, 10)
            .unwrap()
            .into_iter()
            .map(|ifd| {
                let out = tempfile::tempdir_in(dir.path()).unwrap();
                let page = write_page(&path, ifd, out.path(), 1 << 20).unwrap();
                let img = image::open(page).unwrap().to_luma8();
                (img.width(), img.height(), img.get_pixel(0, 0)[0])
            })
            .collect()
    }

    #[test]
    fn thumbnails_are_not_pages() {
        let mut out = Cursor::new(Vec::new());
        tiff_of(
            TiffEncoder::new(&mut out).unwrap(),
            &[(20, 10, false), (5, 2, true), (10, 30, false)],
        );
        assert_eq!(pages_of(out.into_inner()), [(20, 10, 50), (10, 30, 150)]);
    }

    #[test]
    fn bigtiff_pages_are_read_too() {
        let mut out = Cursor::new(Vec::new());
        tiff_of(
            TiffEncoder::new_big(&mut out).unwrap(),
            &[(8, 8, false), (9, 7, false)],
        );
        assert_eq!(pages_of(out.into_inner()), [(8, 8, 50), (9, 7, 100)]);
    }

    #[test]
    fn too_many_pages_and_too_many_pixels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scans.tif");
        let mut out = Cursor::new(Vec::new());
        tiff_of(
            TiffEncoder::new(&mut out).unwrap(),
            &[(8, 8, false), (100, 100, false), (8, 8, false)],
        );
        std::fs::write(&path, out.into_inner()).unwrap();
        assert!(matches!(
            pages(&path, 2),
            Err(PagesError::TooManyPages { limit: 2 })
        ));
        let ifds = pages(&path, 3).unwrap();
        let err = write_page(&path, ifds[1], dir.path(), 1000).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        assert!(write_page(&path, ifds[2], dir.path(), 1000).is_ok());
    }

    #[test]
    fn a_broken_later_page_refuses_the_file_rather_than_dropping_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scans.tif");
        let mut out = Cursor::new(Vec::new());
        tiff_of(
            TiffEncoder::new(&mut out).unwrap(),
            &[(8, 8, false), (9, 9, false)],
        );
        let mut bytes = out.into_inner();
        std::fs::write(&path, &bytes).unwrap();
        // The first directory's link to the next one, pointed past the end.
        let first = pages(&path, 10).unwrap()[0] as usize;
        let entries = u16::from_le_bytes([bytes[first], bytes[first + 1]]) as usize;
        let link = first + 2 + 12 * entries;
        let past = (bytes.len() as u32 + 1000).to_le_bytes();
        bytes[link..link + 4].copy_from_slice(&past);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(pages(&path, 10).unwrap_err().code(), "corrupt_image");
        // Not a TIFF at all: no pages, for the image check to judge.
        std::fs::write(&path, b"II*\0 and nothing else").unwrap();
        assert_eq!(pages(&path, 10).unwrap(), Vec::<u64>::new());
    }
}
