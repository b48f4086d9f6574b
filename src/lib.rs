//! gst-torch: a GStreamer plugin that classifies video with TorchScript models through libtorch.
//!
//! Element `torchclassify` passes video through untouched and attaches each frame's result as
//! buffer metadata ([`meta::ClassificationMeta`] and a full-frame ROI meta) and as a `torchclassify`
//! element message on the bus ([`message`]). The logic lives in the GStreamer-free
//! [`torchcore`] crate; this crate is the elements, their metas and messages, and libtorch.

use gst::glib;
use std::sync::{Mutex, MutexGuard};

#[cfg(feature = "analytics")]
pub mod analytics;
mod classify;
pub mod detect;
pub mod enums;
mod infer;
pub mod message;
pub mod meta;
pub mod model;
mod overlay;
mod torchpublish;
mod track;
mod video;

pub use meta::ClassificationMeta;
pub use overlay::render::Position as OverlayPosition;
pub use torchcore;
pub use torchcore::classify::{Classification, Prediction};
pub use torchcore::frame::{FrameInfo, Region};

/// Locks `m`. A poisoned lock only means a panic elsewhere; the elements' data behind locks
/// stays consistent between statements, so it is used as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    classify::register(plugin)?;
    detect::register(plugin)?;
    overlay::register(plugin)?;
    track::register(plugin)?;
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
