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
pub mod postprocess;
pub mod preprocess;
pub mod stats;

pub use meta::ClassificationMeta;
pub use postprocess::{Classification, FrameInfo, Prediction};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    classify::register(plugin)
}

gst::plugin_define!(
    torch,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
