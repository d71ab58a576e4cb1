//! Links libjpeg-turbo's TurboJPEG library (Debian: libturbojpeg0-dev),
//! found with pkg-config, for the scaled JPEG decode in `turbo.rs`.

fn main() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("2.0")
        .probe("libturbojpeg")
    {
        panic!(
            "cardex needs libjpeg-turbo's TurboJPEG 2.0 or newer (Debian: \
             apt-get install libturbojpeg0-dev, or run scripts/deps.sh): {e}"
        );
    }
}
