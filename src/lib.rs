//! gst-torch: a GStreamer plugin that classifies video with TorchScript models through libtorch.
//!
//! Element `torchclassify` passes video through untouched and attaches each frame's result as
//! buffer metadata ([`meta::ClassificationMeta`] and a full-frame ROI meta) and as a `torchclassify`
//! element message on the bus ([`message`]).

use gst::glib;

mod classify;
pub mod inference;
pub mod labels;
pub mod message;
pub mod meta;
pub mod modelconfig;
mod overlay;
pub mod postprocess;
pub mod preprocess;
pub mod results;
pub mod stats;
mod torchpublish;

pub use meta::ClassificationMeta;
pub use overlay::render::Position as OverlayPosition;
pub use postprocess::{Classification, FrameInfo, Prediction};

/// The packed RGB formats torchclassify takes.
pub(crate) const FORMATS: [gst_video::VideoFormat; 10] = [
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
];

/// torchclassify's sink and src templates: the packed RGB formats, any size and rate.
pub(crate) fn packed_rgb_pad_templates() -> Vec<gst::PadTemplate> {
    sink_src_templates(
        &gst_video::VideoCapsBuilder::new()
            .format_list(FORMATS)
            .build(),
    )
}

/// An always sink pad and an always src pad taking `caps`: the templates of each of the
/// plugin's (one in, one out) elements.
pub(crate) fn sink_src_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("sink", gst::PadDirection::Sink),
        ("src", gst::PadDirection::Src),
    ]
    .into_iter()
    .map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps)
            .expect("valid static pad template")
    })
    .collect()
}

/// Where R, G and B sit in a pixel of `format`.
pub(crate) fn layout(format: gst_video::VideoFormat) -> Option<preprocess::PixelLayout> {
    Some(match format {
        gst_video::VideoFormat::Rgb => preprocess::PixelLayout::RGB,
        gst_video::VideoFormat::Bgr => preprocess::PixelLayout::BGR,
        gst_video::VideoFormat::Rgbx | gst_video::VideoFormat::Rgba => {
            preprocess::PixelLayout::RGBX
        }
        gst_video::VideoFormat::Bgrx | gst_video::VideoFormat::Bgra => {
            preprocess::PixelLayout::BGRX
        }
        gst_video::VideoFormat::Xrgb | gst_video::VideoFormat::Argb => {
            preprocess::PixelLayout::XRGB
        }
        gst_video::VideoFormat::Xbgr | gst_video::VideoFormat::Abgr => {
            preprocess::PixelLayout::XBGR
        }
        _ => return None,
    })
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    classify::register(plugin)?;
    overlay::register(plugin)?;
    torchpublish::register(plugin)
}

gst::plugin_define!(
    torch,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // The crate is MIT OR Apache-2.0 (Cargo.toml, README). GStreamer's license field takes one
    // of its own names and knows no dual license: "MIT/X11" is its name for MIT, as in
    // gst-plugins-rs' dual-licensed plugins.
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // GStreamer refuses an empty origin; this is its own build's default when none is known
    // (meson option package-origin). The project has no public address yet.
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
