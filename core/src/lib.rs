//! The logic of gst-torch's elements, with neither GStreamer nor libtorch in it (nor in its
//! dependencies), so it is unit-tested in seconds on any machine: `cargo test -p torchcore`.
//!
//! - [`frame`]: a frame as plain planes, strides and pixel format; which frame; its regions.
//! - [`preprocess`]: one pass from a frame (packed RGB, YUV, gray) to the model's input.
//! - [`classify`]: outputs → softmax/sigmoid, threshold, top-k → [`classify::Classification`].
//! - [`labels`], [`config`] (the model config file), [`settings`] (an element's typed settings,
//!   resolved against the config file; what a shared model's users must agree on).
//! - [`scheduler`]: which frames run when, and in which order they leave.
//! - [`batch`]: the model thread, generic over [`batch::Forward`] ("run this batch"), serving
//!   one or many clients and batching their jobs; [`sharing`]: models shared by id.
//! - [`results`] (JSON lines), [`stats`] (the counters behind `stats`).
//! - [`detect`]: a detector's outputs (yolov8, yolov5, boxes) → NMS → boxes in frame pixels
//!   through a [`geometry::Mapping`]; [`detected`]: a frame's boxes as objects and JSON.
//! - [`track`]: stable ids across frames (ByteTrack's two stages, a Kalman filter per track),
//!   and [`track::Session`], a tracker element's per-stream logic.
//!
//! The plugin crate maps GStreamer buffers, caps, properties and messages onto these types, and
//! implements [`batch::Forward`] with libtorch.

/// `name()`, `from_name()` and `ALL` for an enum whose values have names (as properties, config
/// files and messages spell them), and `Display` as the name.
macro_rules! names {
    ($($ty:ident { $($variant:ident = $name:literal),+ $(,)? })*) => {$(
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The value's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value named `name`, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}
pub(crate) use names;

pub mod batch;
pub mod classify;
pub mod config;
pub mod detect;
pub mod detected;
pub mod forward;
pub mod frame;
pub mod geometry;
pub mod labels;
pub mod preprocess;
pub mod results;
pub mod scheduler;
pub mod settings;
pub mod sharing;
pub mod stats;
pub mod track;
