//! A small safe binding to libjpeg-turbo's TurboJPEG 2.x API (Debian's
//! `libturbojpeg0`): read a JPEG's header; decode it to its Y, Cb and Cr
//! planes at 1/1, 1/2, 1/4 or 1/8 of its size, scaled in the DCT domain,
//! which costs far less than decoding every pixel and throwing most of
//! them away; and encode such planes, or RGB pixels, as a JPEG.
//!
//! Working on the planes skips four steps a round trip through RGB pays
//! for: the decoder's chroma upsampling and colour conversion, and the
//! encoder's conversion and chroma downsampling; a resize of the planes
//! touches half the bytes of one of RGB.
//!
//! The `turbojpeg` crate binds libjpeg-turbo 3's `tj3*` functions, which
//! Debian bookworm's 2.1.5 does not have; its 0.5 releases bind the 2.x
//! API but offer no scaled decode and pass no flags (so no stop on a
//! warning). This module declares the functions it needs itself. It is
//! the one place in cardex with unsafe code.

#![allow(unsafe_code)]

use std::borrow::Cow;
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
    pub const CS_YCBCR: c_int = 1;
    pub const CS_GRAY: c_int = 2;
    /// `TJFLAG_STOPONWARNING`: a warning (such as data cut short) stops the
    /// decoder instead of leaving grey where the data is missing.
    pub const FLAG_STOP_ON_WARNING: c_int = 8192;
    /// `TJFLAG_LIMITSCANS`: refuse a progressive JPEG of more than 500
    /// scans, which could take minutes of CPU to decode.
    pub const FLAG_LIMIT_SCANS: c_int = 32768;

    /// `TJSAMP_*`: how the chroma planes are subsampled. 4:2:0 (halved
    /// both ways) is how cameras and scanners write it.
    pub const SAMP_444: c_int = 0;
    pub const SAMP_422: c_int = 1;
    pub const SAMP_420: c_int = 2;
    pub const SAMP_GRAY: c_int = 3;
    pub const SAMP_440: c_int = 4;
    pub const SAMP_411: c_int = 5;
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
        pub fn tjDecompressToYUVPlanes(
            handle: *mut c_void,
            jpeg: *const c_uchar,
            jpeg_size: c_ulong,
            planes: *mut *mut c_uchar,
            width: c_int,
            strides: *mut c_int,
            height: c_int,
            flags: c_int,
        ) -> c_int;
        pub fn tjCompressFromYUVPlanes(
            handle: *mut c_void,
            planes: *mut *const c_uchar,
            width: c_int,
            strides: *const c_int,
            height: c_int,
            subsampling: c_int,
            jpeg: *mut *mut c_uchar,
            jpeg_size: *mut c_ulong,
            quality: c_int,
            flags: c_int,
        ) -> c_int;
        pub fn tjPlaneWidth(component: c_int, width: c_int, subsampling: c_int) -> c_int;
        pub fn tjPlaneHeight(component: c_int, height: c_int, subsampling: c_int) -> c_int;
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
    /// True for YCbCr or grey data, which decode to Y, Cb, Cr planes as
    /// they are stored; false for RGB, CMYK and YCCK data, which need a
    /// conversion (or colour management) first.
    pub planar: bool,
    /// `TJSAMP_*`, how the stored chroma is subsampled (or grey).
    subsampling: c_int,
}

/// One 8-bit plane of an image: Y, Cb or Cr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    /// Width in samples; also the stride.
    pub width: u32,
    /// Height in samples.
    pub height: u32,
    /// `width` × `height` samples, row by row.
    pub samples: Vec<u8>,
}

/// A decoded image as its planes.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    /// The luma plane: the image's size, padded to whole chroma samples
    /// (one more column or row where a subsampled side is odd), as the
    /// library lays it out.
    pub y: Plane,
    /// Cb and Cr, subsampled as stored; none for a grey image.
    pub chroma: Option<[Plane; 2]>,
    /// How many luma samples across and down one chroma sample covers.
    pub chroma_step: (u32, u32),
}

/// Luma samples across and down per chroma sample for a `TJSAMP_*`
/// (the MCU size over 8); none for grey and unknown values.
fn chroma_step(subsampling: c_int) -> Option<(u32, u32)> {
    match subsampling {
        ffi::SAMP_444 => Some((1, 1)),
        ffi::SAMP_422 => Some((2, 1)),
        ffi::SAMP_420 => Some((2, 2)),
        ffi::SAMP_440 => Some((1, 2)),
        ffi::SAMP_411 => Some((4, 1)),
        _ => None,
    }
}

/// The width and height of plane `component` (0 Y, 1 Cb, 2 Cr) of a
/// `w` × `h` image subsampled as `subsampling`, as the library lays it out.
fn plane_size(component: c_int, (w, h): (c_int, c_int), subsampling: c_int) -> Option<(u32, u32)> {
    // SAFETY: plain arithmetic on the arguments, no memory touched; -1 for
    // arguments out of bounds.
    let (pw, ph) = unsafe {
        (
            ffi::tjPlaneWidth(component, w, subsampling),
            ffi::tjPlaneHeight(component, h, subsampling),
        )
    };
    Some((u32::try_from(pw).ok()?, u32::try_from(ph).ok()?))
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
        // A stream of tables alone succeeds without setting the outputs:
        // their zeros are refused here as an image without pixels.
        let side = |v: c_int| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| ImageError::Corrupt("the image has no pixels".into()))
        };
        Ok(Header {
            width: side(width)?,
            height: side(height)?,
            planar: matches!(colorspace, ffi::CS_YCBCR | ffi::CS_GRAY)
                && (subsampling == ffi::SAMP_GRAY || chroma_step(subsampling).is_some()),
            subsampling,
        })
    }

    /// Decodes `jpeg`, whose [`header`](Self::header) is `header`, to its
    /// planes at `scale`, refusing more than `max_pixels` (checked from the
    /// header, before anything is allocated). Only YCbCr and grey JPEGs
    /// decode this way ([`Header::planar`]). Warnings, such as data cut
    /// short, are errors, and so are progressive JPEGs of very many scans.
    pub fn decode_planes(
        &mut self,
        jpeg: &[u8],
        header: &Header,
        scale: Scale,
        max_pixels: u64,
    ) -> Result<Planes, ImageError> {
        self.decode_planes_into(jpeg, header, scale, max_pixels, |_| Vec::new())
    }

    /// [`decode_planes`](Self::decode_planes) into buffers from `buffer`,
    /// asked once a plane for one of at least the plane's length (it may
    /// hand back a shorter one, which grows): buffers reused from an
    /// earlier decode have their pages mapped already, which spares the
    /// kernel's faults and zeroing of fresh ones (2–6 ms for the 5–9 MB
    /// planes of a 12 MP scan at 1/2). Whatever they hold is overwritten.
    pub fn decode_planes_into(
        &mut self,
        jpeg: &[u8],
        header: &Header,
        scale: Scale,
        max_pixels: u64,
        mut buffer: impl FnMut(usize) -> Vec<u8>,
    ) -> Result<Planes, ImageError> {
        // The library lays the planes out from the JPEG itself: a header of
        // another file would size the buffers wrong.
        if self.header(jpeg)? != *header {
            return Err(ImageError::Corrupt(
                "the header given is not this JPEG's".into(),
            ));
        }
        ImageError::check_pixels(header.width, header.height, max_pixels)?;
        if !header.planar {
            return Err(ImageError::Corrupt(
                "an RGB, CMYK or YCCK JPEG has no YCbCr planes to decode".into(),
            ));
        }
        let too_big = || ImageError::Corrupt("the scaled image is too large to decode".into());
        let int = |v: u32| to_c_int(v).ok_or_else(too_big);
        let (w, h) = scale.of((header.width, header.height));
        let size = (int(w)?, int(h)?);
        let grey = header.subsampling == ffi::SAMP_GRAY;
        let mut planes = Vec::with_capacity(3);
        for component in 0..if grey { 1 } else { 3 } {
            let (pw, ph) = plane_size(component, size, header.subsampling).ok_or_else(too_big)?;
            let len = usize::try_from(u64::from(pw) * u64::from(ph)).map_err(|_| too_big())?;
            let mut samples = buffer(len);
            // Grown to the length exactly, not to twice the old capacity.
            samples.reserve_exact(len.saturating_sub(samples.len()));
            samples.resize(len, 0);
            planes.push(Plane {
                width: pw,
                height: ph,
                samples,
            });
        }
        let mut strides = planes
            .iter()
            .map(|p| int(p.width))
            .collect::<Result<Vec<_>, _>>()?;
        let mut pointers: Vec<*mut u8> =
            planes.iter_mut().map(|p| p.samples.as_mut_ptr()).collect();
        // SAFETY: `handle` is a live decompressor; `jpeg` is readable for
        // the length passed. Asked for `w` × `h`, the library decodes at the
        // largest of its factors whose output fits in `w` × `h` (this one,
        // or a larger one giving the same size), and writes each plane at
        // its `tjPlaneWidth` × `tjPlaneHeight` for that size and the JPEG's
        // subsampling, rows `strides[i]` (that width) apart: exactly the
        // buffers allocated above, which outlive the call. A grey JPEG has
        // one component, and the library reads and writes only
        // `pointers[0]` and `strides[0]` (the arrays are of length 1 then).
        let status = unsafe {
            ffi::tjDecompressToYUVPlanes(
                self.handle.as_ptr(),
                jpeg.as_ptr(),
                jpeg_size(jpeg)?,
                pointers.as_mut_ptr(),
                size.0,
                strides.as_mut_ptr(),
                size.1,
                ffi::FLAG_STOP_ON_WARNING | ffi::FLAG_LIMIT_SCANS,
            )
        };
        if status != 0 {
            return Err(self.error());
        }
        let odd = || ImageError::Corrupt("the JPEG's chroma subsampling is not one known".into());
        let mut planes = planes.into_iter();
        let y = planes.next().ok_or_else(odd)?;
        Ok(match (planes.next(), planes.next()) {
            (Some(cb), Some(cr)) => Planes {
                y,
                chroma: Some([cb, cr]),
                chroma_step: chroma_step(header.subsampling).ok_or_else(odd)?,
            },
            _ => Planes {
                y,
                chroma: None,
                chroma_step: (1, 1),
            },
        })
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
    let (w, h) = image.dimensions();
    let pitch = w
        .checked_mul(3)
        .and_then(to_c_int)
        .ok_or_else(|| encode_failed("too large"))?;
    compress(
        (w, h),
        quality,
        |handle, (width, height), buffer, size, quality| {
            // SAFETY: `handle` is a live compressor; `image` holds `h` rows of
            // `w` RGB pixels, `pitch` bytes apart; `buffer` and `size` are as
            // `compress` describes.
            unsafe {
                ffi::tjCompress2(
                    handle,
                    image.as_raw().as_ptr(),
                    width,
                    pitch,
                    height,
                    ffi::PF_RGB,
                    buffer,
                    size,
                    ffi::SAMP_420,
                    quality,
                    ffi::FLAG_NO_REALLOC,
                )
            }
        },
    )
}

/// Encodes a `y`-sized image from its planes, laid out for 4:2:0 (each
/// chroma plane half the luma's size, rounded up), as a JPEG of `quality`
/// (1–100), with no colour conversion.
pub fn encode_planes_420(
    y: &Plane,
    cb: &Plane,
    cr: &Plane,
    quality: u8,
) -> Result<Vec<u8>, ImageError> {
    let int = |v: u32| to_c_int(v).ok_or_else(|| encode_failed("too large"));
    let whole = |p: &Plane| p.samples.len() as u64 == u64::from(p.width) * u64::from(p.height);
    let laid_out = || encode_failed("the planes are not laid out for 4:2:0");
    if !whole(y) {
        return Err(laid_out());
    }
    let image_size = (y.width, y.height);
    let size = (int(y.width)?, int(y.height)?);
    // The library reads the luma plane padded to whole chroma samples.
    let padded = plane_size(0, size, ffi::SAMP_420)
        .ok_or_else(|| encode_failed("too large"))
        .map(|to| pad_plane(y, to))?;
    let y = padded.as_ref();
    for (component, plane) in [(0, y), (1, cb), (2, cr)] {
        if plane_size(component, size, ffi::SAMP_420) != Some((plane.width, plane.height))
            || !whole(plane)
        {
            return Err(laid_out());
        }
    }
    let strides = [int(y.width)?, int(cb.width)?, int(cr.width)?];
    let mut pointers = [y.samples.as_ptr(), cb.samples.as_ptr(), cr.samples.as_ptr()];
    compress(
        image_size,
        quality,
        |handle, (width, height), buffer, size, quality| {
            // SAFETY: `handle` is a live compressor; the three planes were
            // checked above to be exactly the library's plane sizes for this
            // image size and 4:2:0, rows `strides[i]` (their widths) apart, and
            // live for the call; `buffer` and `size` are as `compress` describes.
            unsafe {
                ffi::tjCompressFromYUVPlanes(
                    handle,
                    pointers.as_mut_ptr(),
                    width,
                    strides.as_ptr(),
                    height,
                    ffi::SAMP_420,
                    buffer,
                    size,
                    quality,
                    ffi::FLAG_NO_REALLOC,
                )
            }
        },
    )
}

/// `plane` (holding all its samples) grown to `(width, height)` by
/// repeating its last column and row, or borrowed as it is when it is that
/// size already (or empty).
fn pad_plane(plane: &Plane, (width, height): (u32, u32)) -> Cow<'_, Plane> {
    if (plane.width, plane.height) == (width, height) || plane.width == 0 || plane.height == 0 {
        return Cow::Borrowed(plane);
    }
    let (w, h) = (plane.width as usize, plane.height as usize);
    let mut samples = Vec::with_capacity(width as usize * height as usize);
    for row in 0..height as usize {
        let from = &plane.samples[row.min(h - 1) * w..][..w];
        samples.extend_from_slice(from);
        samples.extend(std::iter::repeat_n(
            from[w - 1],
            (width as usize).saturating_sub(w),
        ));
    }
    Cow::Owned(Plane {
        width,
        height,
        samples,
    })
}

/// `v` as the library's `int`, if it fits.
fn to_c_int(v: u32) -> Option<c_int> {
    c_int::try_from(v).ok()
}

fn encode_failed(what: &str) -> ImageError {
    ImageError::Corrupt(format!("could not encode the image: {what}"))
}

/// Runs one TurboJPEG compression of a `w` × `h` image, 4:2:0, into a
/// buffer of the library's worst-case size. `call` gets the compressor,
/// the size, a pointer to the buffer's address and one to its length
/// (which, with `TJFLAG_NOREALLOC`, the library writes into and never
/// frees or replaces, setting the length to the bytes written), and the
/// quality; it returns the library's status.
fn compress(
    (w, h): (u32, u32),
    quality: u8,
    call: impl FnOnce(*mut c_void, (c_int, c_int), *mut *mut u8, *mut c_ulong, c_int) -> c_int,
) -> Result<Vec<u8>, ImageError> {
    // The library works out the buffer's size in `int`s: refuse sizes that
    // could overflow them, and empty images.
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > i32::MAX as u64 / 8 {
        return Err(encode_failed("no image of that size can be encoded"));
    }
    let int = |v: u32| to_c_int(v).ok_or_else(|| encode_failed("too large"));
    let (width, height) = (int(w)?, int(h)?);
    // SAFETY: no arguments; returns a new instance or null.
    let handle = NonNull::new(unsafe { ffi::tjInitCompress() })
        .ok_or_else(|| encode_failed("no encoder"))?;
    let compressor = Compressor { handle };
    // SAFETY: plain arithmetic on the sizes, no memory touched.
    let bound = unsafe { ffi::tjBufSize(width, height, ffi::SAMP_420) };
    // `(unsigned long)-1` is its error value.
    let capacity = Some(bound)
        .filter(|&n| n > 0 && n != c_ulong::MAX)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| encode_failed("no size bound"))?;
    let mut out = vec![0u8; capacity];
    let mut buffer = out.as_mut_ptr();
    // With NOREALLOC the library sets this to the buffer's size itself, and
    // to the bytes written when it is done.
    let mut size: c_ulong = bound;
    let status = call(
        compressor.handle.as_ptr(),
        (width, height),
        &mut buffer,
        &mut size,
        c_int::from(quality.clamp(1, 100)),
    );
    if status != 0 {
        // SAFETY: as in `Decompressor::error`.
        return Err(encode_failed(&unsafe {
            message(ffi::tjGetErrorStr2(compressor.handle.as_ptr()))
        }));
    }
    let written = usize::try_from(size).map_err(|_| encode_failed("bad size"))?;
    if buffer != out.as_mut_ptr() || written > capacity {
        return Err(encode_failed("the encoder wrote elsewhere"));
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
            (
                header.width,
                header.height,
                header.planar,
                header.subsampling
            ),
            (403, 301, true, ffi::SAMP_444)
        );
        let size = |p: &Plane| (p.width, p.height);
        let quarter = d
            .decode_planes(&jpeg, &header, Scale::Quarter, u64::MAX)
            .unwrap();
        assert_eq!(size(&quarter.y), (101, 76));
        let [cb, cr] = quarter.chroma.as_ref().unwrap();
        assert_eq!((size(cb), size(cr)), ((101, 76), (101, 76)));
        assert_eq!(quarter.chroma_step, (1, 1));
        // 4:2:0: chroma halved, the luma padded to whole chroma samples.
        let mut jpeg420 = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg420, 90);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder
            .encode(
                &vec![90; 403 * 301 * 3],
                403,
                301,
                jpeg_encoder::ColorType::Rgb,
            )
            .unwrap();
        let header420 = d.header(&jpeg420).unwrap();
        assert_eq!(header420.subsampling, ffi::SAMP_420);
        let quarter = d
            .decode_planes(&jpeg420, &header420, Scale::Quarter, u64::MAX)
            .unwrap();
        assert_eq!(size(&quarter.y), (102, 76));
        let [cb, _] = quarter.chroma.as_ref().unwrap();
        assert_eq!(size(cb), (51, 38));
        assert_eq!(quarter.chroma_step, (2, 2));
        let full = d
            .decode_planes(&jpeg, &header, Scale::Full, u64::MAX)
            .unwrap();
        assert_eq!(size(&full.y), (403, 301));
        let cmyk = cardex_testkit::cmyk_jpeg(1);
        let cmyk_header = d.header(&cmyk).unwrap();
        assert!(!cmyk_header.planar);
        assert_eq!(
            d.decode_planes(&cmyk, &cmyk_header, Scale::Full, u64::MAX)
                .unwrap_err()
                .code(),
            "corrupt_image"
        );
    }

    #[test]
    fn images_no_buffer_can_be_sized_for_are_refused() {
        for (w, h) in [(0, 10), (10, 0), (40_000, 40_000)] {
            let err = compress((w, h), 90, |_, _, _, _, _| 0).unwrap_err();
            assert!(err.to_string().contains("no image of that size"), "{err}");
        }
        let short = Plane {
            width: 10,
            height: 10,
            samples: vec![0; 99],
        };
        let chroma = Plane {
            width: 5,
            height: 5,
            samples: vec![128; 25],
        };
        let err = encode_planes_420(&short, &chroma, &chroma, 90).unwrap_err();
        assert!(err.to_string().contains("4:2:0"), "{err}");
    }

    #[test]
    fn limits_and_damage_are_errors() {
        let jpeg = cardex_testkit::scan_jpeg(400, 300, true);
        let mut d = Decompressor::new().unwrap();
        let header = d.header(&jpeg).unwrap();
        let err = d
            .decode_planes(&jpeg, &header, Scale::Full, 400 * 300 - 1)
            .unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        let cut = cardex_testkit::cut_to_a_third(&jpeg);
        let cut_header = d.header(&cut).unwrap();
        let err = d
            .decode_planes(&cut, &cut_header, Scale::Full, u64::MAX)
            .unwrap_err();
        assert_eq!(err.code(), "corrupt_image");
        assert!(err.to_string().contains("Premature end"), "{err}");
        let err = d.header(b"\xFF\xD8 not a jpeg").unwrap_err();
        assert_eq!(err.code(), "corrupt_image");
        // The instance still works after an error.
        assert!(
            d.decode_planes(&jpeg, &header, Scale::Full, u64::MAX)
                .is_ok()
        );
    }
}
