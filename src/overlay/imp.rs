//! GStreamer glue of `torchoverlay`: properties, caps and the per-frame path. What to write,
//! rendering and blending live in `render`.

use super::render::{self, Position, TextImage};
use crate::meta::{self, ClassificationMeta};
use crate::preprocess::PixelLayout;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use std::sync::{LazyLock, Mutex, MutexGuard};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchoverlay",
        gst::DebugColorFlags::empty(),
        Some("Classification overlay"),
    )
});

const DEFAULT_FONT: &str = "Sans Bold";
const DEFAULT_COLOR: u32 = 0xffff_ffff;
const DEFAULT_BACKGROUND: u32 = 0xa000_0000;
const DEFAULT_MIN_CONFIDENCE: f64 = 0.0;

#[derive(Debug, Clone, PartialEq)]
struct Settings {
    font_desc: String,
    position: Position,
    show_top_k: bool,
    color: u32,
    background: u32,
    min_confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            font_desc: DEFAULT_FONT.into(),
            position: Position::default(),
            show_top_k: false,
            color: DEFAULT_COLOR,
            background: DEFAULT_BACKGROUND,
            min_confidence: DEFAULT_MIN_CONFIDENCE,
        }
    }
}

/// The text image last rendered, and what it was rendered from.
struct Cached {
    text: String,
    settings: Settings,
    default_px: i32,
    image: TextImage,
}

#[derive(Default)]
struct State {
    info: Option<(gst_video::VideoInfo, PixelLayout)>,
    cached: Option<Cached>,
}

#[derive(Default)]
pub struct TorchOverlay {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for TorchOverlay {
    const NAME: &'static str = "GstTorchOverlay";
    type Type = super::TorchOverlay;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for TorchOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("font-desc")
                    .nick("Font")
                    .blurb(
                        "Pango font description, e.g. \"Sans Bold 24\"; without a size the text \
                         is 1/16 of the frame height",
                    )
                    .default_value(Some(DEFAULT_FONT))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("position", Position::default())
                    .nick("Position")
                    .blurb("Corner of the frame the text goes in")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("show-top-k")
                    .nick("Show top-k")
                    .blurb("Write every class of the result's top-k, one per line, not just top-1")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("color")
                    .nick("Text colour")
                    .blurb("Text colour as 0xAARRGGBB")
                    .default_value(DEFAULT_COLOR)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("background")
                    .nick("Background")
                    .blurb("Colour of the box behind the text as 0xAARRGGBB; alpha 0 = no box")
                    .default_value(DEFAULT_BACKGROUND)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-confidence")
                    .nick("Minimum confidence")
                    .blurb("Below this top-1 confidence write \"?\" instead of the label")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_MIN_CONFIDENCE)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "font-desc" => {
                s.font_desc = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_else(|| DEFAULT_FONT.into())
            }
            "position" => s.position = value.get().expect("type checked upstream"),
            "show-top-k" => s.show_top_k = value.get().expect("type checked upstream"),
            "color" => s.color = value.get().expect("type checked upstream"),
            "background" => s.background = value.get().expect("type checked upstream"),
            "min-confidence" => s.min_confidence = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "font-desc" => s.font_desc.to_value(),
            "position" => s.position.to_value(),
            "show-top-k" => s.show_top_k.to_value(),
            "color" => s.color.to_value(),
            "background" => s.background.to_value(),
            "min-confidence" => s.min_confidence.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for TorchOverlay {}

impl ElementImpl for TorchOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Classification overlay",
                "Filter/Editor/Video",
                "Draws the classification a buffer carries (torchclassify's meta, or a \
                 full-frame ROI meta with a torchclassify param) onto the frame",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(crate::packed_rgb_pad_templates);
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for TorchOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {}", incaps))?;
        let layout = crate::layout(info.format())
            .ok_or_else(|| gst::loggable_error!(CAT, "Unsupported format {}", info.format()))?;
        lock(&self.state).info = Some((info, layout));
        self.parent_set_caps(incaps, outcaps)
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = State::default();
        Ok(())
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = lock(&self.settings).clone();
        let caption = |c: &crate::Classification| {
            render::caption(c, settings.show_top_k, settings.min_confidence)
        };
        let text = match ClassificationMeta::from_buffer(buffer) {
            Some(m) => Some(caption(m.classification())),
            None => meta::from_roi_meta(buffer).map(|c| caption(&c)),
        };
        // Frames without a result pass untouched: not mapped, not written.
        let Some(text) = text else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let mut state = lock(&self.state);
        let Some((info, layout)) = state.info.clone() else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let default_px = (info.height() as i32 / 16).max(8);
        let fresh = state
            .cached
            .as_ref()
            .is_none_or(|c| c.text != text || c.settings != settings || c.default_px != default_px);
        if fresh {
            let image = render::render(
                &text,
                &settings.font_desc,
                default_px,
                settings.color,
                settings.background,
            )
            .map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::LibraryError::Failed,
                    ("Cannot render text: {}", e)
                );
                gst::FlowError::Error
            })?;
            state.cached = Some(Cached {
                text,
                settings: settings.clone(),
                default_px,
                image,
            });
        }
        let Some(cached) = state.cached.as_ref() else {
            return Err(gst::FlowError::Error);
        };
        let size = buffer.size();
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info).map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "Cannot map a buffer of {} bytes as a {}x{} frame",
                        size,
                        info.width(),
                        info.height()
                    )
                );
                gst::FlowError::Error
            })?;
        let (w, h) = (info.width() as usize, info.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let margin = (h / 40).max(2);
        let img = &cached.image;
        let (x, y) = settings.position.place(w, h, img.width, img.height, margin);
        let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
        img.blend(data, stride, w, h, layout, x, y);
        Ok(gst::FlowSuccess::Ok)
    }
}
