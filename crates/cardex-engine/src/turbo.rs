//! A small safe binding to libjpeg-turbo's TurboJPEG 2.x API (Debian's
//! `libturbojpeg0`): read a JPEG's header, and decode it to RGB at 1/1,
//! 1/2, 1/4 or 1/8 of its size, scaled in the DCT domain, which costs far
//! less than decoding every pixel and throwing most of them away.
//!
//! The `turbojpeg` crate binds libjpeg-turbo 3's `tj3*` functions, which
//! Debian bookworm's 2.1.5 does not have; its 0.5 releases bind the 2.x
//! API but offer no scaled decode and pass no flags (so no stop on a
//! warning). This module declares the six functions it needs itself. It
//! is the one place in cardex with unsafe code.

#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use std::ptr::NonNull;

use crate::image::ImageError;

/// The TurboJPEG 2.x declarations used here, as in `turbojpeg.h` 2.1.
mod ffi {
    use std::ffi::{c_char, c_int, c_uchar, c_ulong, c_void};

    /// `tjscalingfactor`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct ScalingFactor {
        pub num: c_int,
        pub denom: c_int,
    }

    /// `TJPF_RGB`: 3 bytes a pixel, R, G, B.
    pub const PF_RGB: c_int = 0;
    /// `TJCS_*`, the colour space of the JPEG's data.
    pub const CS_RGB: c_int = 0;
    pub const CS_YCBCR: c_int = 1;
    pub const CS_GRAY: c_int = 2;
    /// `TJFLAG_STOPONWARNING`: a warning (such as data cut short) stops the
    /// decoder instead of leaving grey where the data is missing.
    pub const FLAG_STOP_ON_WARNING: c_int = 8192;

    /// `TJSAMP_420`: chroma halved both ways, as cameras and scanners
    /// write it.
    pub const SAMP_420: c_int = 2;
    /// `TJFLAG_NOREALLOC`: write into the buffer given, never reallocate it.
    pub const FLAG_NO_REALLOC: c_int = 1024;

    // The library comes from pkg-config (build.rs).
    unsafe extern "C" {
        pub fn tjInitCompress() -> *mut c_void;
        pub fn tjBufSize(width: c_int, height: c_int, subsampling: c_int) -> c_ulong;
        pub fn tjCompress2(
            handle: *mut c_void,
            src: *const c_uchar,
            width: c_int,
            pitch: c_int,
            height: c_int,
            pixel_format: c_int,
            jpeg: *mut *mut c_uchar,
            jpeg_size: *mut c_ulong,
            subsampling: c_int,
            quality: c_int,
            flags: c_int,
        ) -> c_int;
        pub fn tjInitDecompress() -> *mut c_void;
        pub fn tjDestroy(handle: *mut c_void) -> c_int;
        pub fn tjGetErrorStr2(handle: *mut c_void) -> *mut c_char;
        pub fn tjGetScalingFactors(count: *mut c_int) -> *mut ScalingFactor;
        pub fn tjDecompressHeader3(
            handle: *mut c_void,
            jpeg: *const c_uchar,
            jpeg_size: c_ulong,
            width: *mut c_int,
            height: *mut c_int,
            subsampling: *mut c_int,
            colorspace: *mut c_int,
        ) -> c_int;
        pub fn tjDecompress2(
            handle: *mut c_void,
            jpeg: *const c_uchar,
            jpeg_size: c_ulong,
            dst: *mut c_uchar,
            width: c_int,
            pitch: c_int,
            height: c_int,
            pixel_format: c_int,
            flags: c_int,
        ) -> c_int;
    }
}

/// A reduction libjpeg-turbo applies while decoding, to 1/n of each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scale {
    /// Full size.
    Full = 1,
    /// 1/2.
    Half = 2,
    /// 1/4.
    Quarter = 4,
    /// 1/8.
    Eighth = 8,
}

impl Scale {
    /// The reductions tried, largest first.
    const REDUCTIONS: [Scale; 3] = [Scale::Eighth, Scale::Quarter, Scale::Half];

    /// n, for 1/n of each side.
    pub fn denominator(self) -> u32 {
        self as u32
    }

    /// The largest reduction of a `size` image to resize to `target`
    /// without a visible difference from a full decode: one that leaves at
    /// least 1.25 × `target` on both sides for 1/2, 2 × for 1/4 and 1/8.
    /// A reduced inverse DCT draws thin lines block by block (the 2 × 2 and
    /// 1 × 1 ones most coarsely); a large enough resize afterwards averages
    /// that away. On the sample cards, SSIM against a full decode fell to
    /// 0.97 where 1/8 or 1/2 left barely the target (1.04 ×); with these
    /// margins it stays at 0.98 or more.
    pub fn for_target(size: (u32, u32), target: (u32, u32)) -> Scale {
        let offered = supported_reductions();
        Self::REDUCTIONS
            .into_iter()
            .find(|&s| {
                // Margins in quarters: 1.25 × for 1/2, 2 × for the others.
                let quarters = if s == Scale::Half { 5 } else { 8 };
                let (w, h) = s.of(size);
                offered.contains(&s.denominator())
                    && u64::from(w) * 4 >= u64::from(target.0) * quarters
                    && u64::from(h) * 4 >= u64::from(target.1) * quarters
            })
            .unwrap_or(Scale::Full)
    }

    /// The size of a `(w, h)` image decoded at this scale, rounded up as
    /// libjpeg-turbo does (`TJSCALED`).
    pub fn of(self, (w, h): (u32, u32)) -> (u32, u32) {
        (
            w.div_ceil(self.denominator()),
            h.div_ceil(self.denominator()),
        )
    }

    /// The exact size of a `(w, h)` image at this scale. Where it is not a
    /// whole number, the decoded image's last column or row is partly
    /// padding, which a resize must leave out or the picture shifts.
    pub fn extent(self, (w, h): (u32, u32)) -> (f64, f64) {
        let d = f64::from(self.denominator());
        (f64::from(w) / d, f64::from(h) / d)
    }
}

/// Denominators of the 1/n scaling factors the library offers.
fn supported_reductions() -> Vec<u32> {
    let mut count: c_int = 0;
    // SAFETY: `count` is a valid place for the length. The library returns
    // a pointer to its own static table of `count` factors (or null), which
    // lives as long as the library and is never written.
    let table = unsafe { ffi::tjGetScalingFactors(&mut count) };
    if table.is_null() {
        return Vec::new();
    }
    let len = usize::try_from(count).unwrap_or(0);
    // SAFETY: as above: `table` points at `len` initialised factors.
    let factors = unsafe { std::slice::from_raw_parts(table, len) };
    factors
        .iter()
        .filter(|f| f.num == 1)
        .filter_map(|f| u32::try_from(f.denom).ok())
        .collect()
}

/// What a JPEG's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// True for YCbCr, RGB or grey data, which decode to RGB as they are;
    /// false for CMYK and YCCK, which need colour management.
    pub rgb_or_grey: bool,
}

/// A TurboJPEG decompressor instance.
#[derive(Debug)]
pub struct Decompressor {
    handle: NonNull<c_void>,
}

impl Decompressor {
    /// A new instance.
    pub fn new() -> Result<Self, ImageError> {
        // SAFETY: no arguments; returns a new instance or null.
        let handle = unsafe { ffi::tjInitDecompress() };
        NonNull::new(handle)
            .map(|handle| Self { handle })
            .ok_or_else(|| {
                // SAFETY: a null handle asks for the library's global error,
                // a NUL-terminated string it owns.
                ImageError::Corrupt(unsafe { message(ffi::tjGetErrorStr2(std::ptr::null_mut())) })
            })
    }

    /// Reads the header of `jpeg`, without decoding any pixel.
    pub fn header(&mut self, jpeg: &[u8]) -> Result<Header, ImageError> {
        let (mut width, mut height, mut subsampling, mut colorspace) = (0, 0, 0, 0);
        // SAFETY: `handle` is a live decompressor; `jpeg` is readable for
        // the length passed; the four outputs are valid places for ints.
        let status = unsafe {
            ffi::tjDecompressHeader3(
                self.handle.as_ptr(),
                jpeg.as_ptr(),
                jpeg_size(jpeg)?,
                &mut width,
                &mut height,
                &mut subsampling,
                &mut colorspace,
            )
        };
        if status != 0 {
            return Err(self.error());
        }
        let side = |v: c_int| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| ImageError::Corrupt("the image has no pixels".into()))
        };
        Ok(Header {
            width: side(width)?,
            height: side(height)?,
            rgb_or_grey: matches!(colorspace, ffi::CS_RGB | ffi::CS_YCBCR | ffi::CS_GRAY),
        })
    }

    /// Decodes `jpeg` to RGB at `scale`, refusing more than `max_pixels`
    /// (checked from the header, before anything is allocated). Warnings,
    /// such as data cut short, are errors.
    pub fn decode_rgb(
        &mut self,
        jpeg: &[u8],
        scale: Scale,
        max_pixels: u64,
    ) -> Result<image::RgbImage, ImageError> {
        let header = self.header(jpeg)?;
        if u64::from(header.width) * u64::from(header.height) > max_pixels {
            return Err(ImageError::TooManyPixels {
                width: header.width,
                height: header.height,
                limit: max_pixels,
            });
        }
        if !header.rgb_or_grey {
            return Err(ImageError::Corrupt(
                "a CMYK or YCCK JPEG does not decode to RGB here".into(),
            ));
        }
        let (w, h) = scale.of((header.width, header.height));
        let too_big = || ImageError::Corrupt("the scaled image is too large to decode".into());
        let pitch = w.checked_mul(3).ok_or_else(too_big)?;
        let len = usize::try_from(pitch)
            .ok()
            .and_then(|p| p.checked_mul(usize::try_from(h).ok()?))
            .ok_or_else(too_big)?;
        let int = |v: u32| c_int::try_from(v).map_err(|_| too_big());
        let mut pixels = vec![0u8; len];
        // SAFETY: `handle` is a live decompressor; `jpeg` is readable for
        // the length passed. Asked for `w` × `h`, the library decodes at the
        // largest of its factors whose output fits in `w` × `h` (this one,
        // or a larger one giving the same size) and writes at most `h` rows
        // of `w` pixels, `pitch` bytes apart: at most `len` bytes, which
        // `pixels` holds.
        let status = unsafe {
            ffi::tjDecompress2(
                self.handle.as_ptr(),
                jpeg.as_ptr(),
                jpeg_size(jpeg)?,
                pixels.as_mut_ptr(),
                int(w)?,
                int(pitch)?,
                int(h)?,
                ffi::PF_RGB,
                ffi::FLAG_STOP_ON_WARNING,
            )
        };
        if status != 0 {
            return Err(self.error());
        }
        image::RgbImage::from_raw(w, h, pixels)
            .ok_or_else(|| ImageError::Corrupt("decoded buffer has the wrong size".into()))
    }

    /// The instance's last error, as libjpeg-turbo words it.
    fn error(&self) -> ImageError {
        // SAFETY: `handle` is a live decompressor; the message is a
        // NUL-terminated string inside it, copied before any other call.
        ImageError::Corrupt(unsafe { message(ffi::tjGetErrorStr2(self.handle.as_ptr())) })
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: `handle` came from `tjInitDecompress` and is destroyed
        // only here, once.
        unsafe {
            ffi::tjDestroy(self.handle.as_ptr());
        }
    }
}

/// Encodes RGB `image` as a 4:2:0 JPEG of `quality` (1–100) with
/// libjpeg-turbo's SIMD encoder.
pub fn encode_rgb(image: &image::RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let failed = |what: &str| ImageError::Corrupt(format!("could not encode the image: {what}"));
    let (w, h) = image.dimensions();
    let int = |v: u32| c_int::try_from(v).map_err(|_| failed("too large"));
    let (width, height) = (int(w)?, int(h)?);
    let pitch = int(w.checked_mul(3).ok_or_else(|| failed("too large"))?)?;
    // SAFETY: no arguments; returns a new instance or null.
    let handle =
        NonNull::new(unsafe { ffi::tjInitCompress() }).ok_or_else(|| failed("no encoder"))?;
    let compressor = Compressor { handle };
    // SAFETY: plain arithmetic on the sizes, no memory touched.
    let bound = unsafe { ffi::tjBufSize(width, height, ffi::SAMP_420) };
    let capacity = usize::try_from(bound)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| failed("no size bound"))?;
    let mut out = vec![0u8; capacity];
    let mut buffer = out.as_mut_ptr();
    let mut size: c_ulong = bound;
    // SAFETY: `handle` is a live compressor; `image` holds `h` rows of `w`
    // RGB pixels, `pitch` bytes apart. With NOREALLOC the library writes
    // into `buffer` (`out`, `bound` bytes: tjBufSize's worst case for this
    // size and subsampling) and never frees or replaces it; it sets `size`
    // to the bytes written.
    let status = unsafe {
        ffi::tjCompress2(
            compressor.handle.as_ptr(),
            image.as_raw().as_ptr(),
            width,
            pitch,
            height,
            ffi::PF_RGB,
            &mut buffer,
            &mut size,
            ffi::SAMP_420,
            c_int::from(quality.clamp(1, 100)),
            ffi::FLAG_NO_REALLOC,
        )
    };
    if status != 0 {
        // SAFETY: as in `Decompressor::error`.
        return Err(failed(&unsafe {
            message(ffi::tjGetErrorStr2(compressor.handle.as_ptr()))
        }));
    }
    let written = usize::try_from(size).map_err(|_| failed("bad size"))?;
    if buffer != out.as_mut_ptr() || written > capacity {
        return Err(failed("the encoder wrote elsewhere"));
    }
    out.truncate(written);
    Ok(out)
}

/// A TurboJPEG compressor instance, destroyed when dropped.
struct Compressor {
    handle: NonNull<c_void>,
}

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: `handle` came from `tjInitCompress` and is destroyed only
        // here, once.
        unsafe {
            ffi::tjDestroy(self.handle.as_ptr());
        }
    }
}

/// The length of `jpeg` as the library takes it.
fn jpeg_size(jpeg: &[u8]) -> Result<c_ulong, ImageError> {
    c_ulong::try_from(jpeg.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ImageError::Corrupt("the JPEG is empty or too large".into()))
}

/// Copies a library error message.
///
/// # Safety
/// `text` is null or points at a NUL-terminated string that stays valid
/// for the call.
unsafe fn message(text: *const c_char) -> String {
    if text.is_null() {
        return "libjpeg-turbo failed without saying why".into();
    }
    // SAFETY: the caller guarantees a valid NUL-terminated string.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_string_lossy().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_the_largest_reduction_still_big_enough() {
        let scan = (4000, 3000);
        let of = |target| Scale::for_target(scan, target);
        assert_eq!(of((1536, 1152)), Scale::Half);
        assert_eq!(of((1600, 1200)), Scale::Half);
        assert_eq!(of((1601, 1200)), Scale::Full);
        assert_eq!(of((3000, 2250)), Scale::Full);
        // 1/4 and 1/8 only with twice the target left.
        assert_eq!(of((1000, 750)), Scale::Half);
        assert_eq!(of((500, 375)), Scale::Quarter);
        assert_eq!(of((501, 375)), Scale::Half);
        assert_eq!(of((250, 187)), Scale::Eighth);
        assert_eq!(of((250, 188)), Scale::Quarter);
        // Sizes round up, as libjpeg-turbo's do; the extent does not.
        assert_eq!(Scale::Eighth.of((4001, 3)), (501, 1));
        assert_eq!(Scale::Eighth.extent((4001, 4)), (500.125, 0.5));
    }

    #[test]
    fn the_library_offers_the_power_of_two_reductions() {
        let offered = supported_reductions();
        for s in Scale::REDUCTIONS {
            let d = s.denominator();
            assert!(offered.contains(&d), "1/{d} missing from {offered:?}");
        }
    }

    #[test]
    fn headers_and_scaled_decodes() {
        let jpeg = cardex_testkit::scan_jpeg(403, 301, false);
        let mut d = Decompressor::new().unwrap();
        let header = d.header(&jpeg).unwrap();
        assert_eq!(
            (header.width, header.height, header.rgb_or_grey),
            (403, 301, true)
        );
        let quarter = d.decode_rgb(&jpeg, Scale::Quarter, u64::MAX).unwrap();
        assert_eq!(quarter.dimensions(), (101, 76));
        let full = d.decode_rgb(&jpeg, Scale::Full, u64::MAX).unwrap();
        assert_eq!(full.dimensions(), (403, 301));
        let cmyk = cardex_testkit::cmyk_jpeg(1);
        assert!(!d.header(&cmyk).unwrap().rgb_or_grey);
        assert_eq!(
            d.decode_rgb(&cmyk, Scale::Full, u64::MAX)
                .unwrap_err()
                .code(),
            "corrupt_image"
        );
    }

    #[test]
    fn limits_and_damage_are_errors() {
        let jpeg = cardex_testkit::scan_jpeg(400, 300, true);
        let mut d = Decompressor::new().unwrap();
        let err = d.decode_rgb(&jpeg, Scale::Full, 400 * 300 - 1).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        let cut = cardex_testkit::cut_to_a_third(&jpeg);
        let err = d.decode_rgb(&cut, Scale::Full, u64::MAX).unwrap_err();
        assert_eq!(err.code(), "corrupt_image");
        assert!(err.to_string().contains("Premature end"), "{err}");
        let err = d.header(b"\xFF\xD8 not a jpeg").unwrap_err();
        assert_eq!(err.code(), "corrupt_image");
        // The instance still works after an error.
        assert!(d.decode_rgb(&jpeg, Scale::Full, u64::MAX).is_ok());
    }
}
