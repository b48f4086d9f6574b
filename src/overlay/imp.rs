//! GStreamer glue of `torchoverlay`: properties, caps and the per-frame path. What to write and
//! the rendered text live in `render`, which regions are drawn and where in `regions`;
//! gstreamer-video's overlay composition blends it all or carries it downstream as meta.

use super::compose::{
    Cached, DEFAULT_BACKGROUND, DEFAULT_COLOR, DEFAULT_FONT, DEFAULT_MIN_CONFIDENCE, Settings,
    Texts, attach,
};
use super::regions::{self, Rect};
use super::render::{self, Position};
use crate::lock;
use crate::message;
use crate::meta;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use std::sync::{LazyLock, Mutex};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchoverlay",
        gst::DebugColorFlags::empty(),
        Some("Classification overlay"),
    )
});

/// What happens to a frame's text: blended into its pixels, or attached as a
/// `GstVideoOverlayCompositionMeta` for downstream to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Blend,
    Attach,
    /// Downstream took caps with the composition meta feature; its answer to an allocation query
    /// (asked before the next frame with text) decides.
    AskDownstream,
}

struct State {
    info: Option<gst_video::VideoInfo>,
    output: Output,
    /// The caps let downstream choose (`Output::AskDownstream` after `set_caps`).
    ask_on_reconfigure: bool,
    cached: Option<Cached>,
}

impl Default for State {
    fn default() -> Self {
        State {
            info: None,
            output: Output::Blend,
            ask_on_reconfigure: false,
            cached: None,
        }
    }
}

/// Lock order: `settings` and `state` are never held together (settings are cloned first).
/// Nothing is posted, pushed or queried while either is held.
#[derive(Default)]
pub struct TorchOverlay {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

/// Whether the first structure of `caps` has the overlay composition meta caps feature (not
/// merely ANY features).
fn has_composition_feature(caps: &gst::CapsRef) -> bool {
    caps.features(0).is_some_and(|f| {
        !f.is_any() && f.contains(gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION)
    })
}

/// Sink and src templates: every format gstreamer-video's overlay composition blends into
/// (`GST_VIDEO_OVERLAY_COMPOSITION_BLEND_FORMATS`, which is `GST_VIDEO_FORMATS_ALL`, the list
/// `gst_video_formats_raw()` returns and `textoverlay` takes), in system memory, with or without
/// the overlay composition meta caps feature.
fn pad_templates() -> Vec<gst::PadTemplate> {
    let plain = gst_video::VideoCapsBuilder::new()
        .format_list(gst_video::VideoFormat::iter_raw())
        .build();
    let with_meta = gst_video::VideoCapsBuilder::new()
        .features([
            gst::CAPS_FEATURE_MEMORY_SYSTEM_MEMORY,
            gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION,
        ])
        .format_list(gst_video::VideoFormat::iter_raw())
        .build();
    let mut caps = plain;
    caps.make_mut().append(with_meta);
    crate::video::sink_src_templates(&caps)
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
                        "Pango font description of the frame's label and region captions, e.g. \
                         \"Sans Bold 24\"; without a size the text is 1/16 of the frame height",
                    )
                    .default_value(Some(DEFAULT_FONT))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("position", Position::default())
                    .nick("Position")
                    .blurb(
                        "Corner of the frame the frame's label goes in (a region's caption goes \
                         at its box)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("show-top-k")
                    .nick("Show top-k")
                    .blurb(
                        "Write every class of the result's top-k, one per line, not just top-1 \
                         (frame label and region captions)",
                    )
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("color")
                    .nick("Colour")
                    .blurb("Colour of the text and of region outlines as 0xAARRGGBB")
                    .default_value(DEFAULT_COLOR)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("background")
                    .nick("Background")
                    .blurb(
                        "Colour of the box behind the text (frame label and region captions) as \
                         0xAARRGGBB; alpha 0 = no box",
                    )
                    .default_value(DEFAULT_BACKGROUND)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-confidence")
                    .nick("Minimum confidence")
                    .blurb(
                        "Below this top-1 confidence write \"?\" instead of the label (frame \
                         label and region captions)",
                    )
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
                 full-frame ROI meta with a torchclassify param) in a corner of the frame, and \
                 each region torchclassify classified (any other ROI meta with a torchclassify \
                 param, from inference-region=roi-list) as an outline of its box with its \
                 caption; with the analytics feature, also a full-frame GstAnalyticsClsMtd and \
                 each GstAnalyticsODMtd with a related ClsMtd that no ROI meta draws; or \
                 attaches it all as overlay composition meta for a downstream that composites",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(pad_templates);
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for TorchOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    /// Same format and size on both sides. Towards downstream, caps with the overlay
    /// composition meta feature come first (the text then travels as meta where downstream
    /// draws it, as `textoverlay` and `cea608overlay` do), the plain caps second; towards
    /// upstream, downstream caps with the feature also allow plain caps (the element adds the
    /// meta itself).
    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let feature = gst_video::CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION;
        let mut other = if caps.is_any() {
            caps.clone()
        } else {
            let mut other = gst::Caps::new_empty();
            let out = other.make_mut();
            for (s, f) in caps.iter_with_features() {
                if f.is_any() {
                    out.append_structure_full(s.to_owned(), Some(f.to_owned()));
                    continue;
                }
                let has = f.contains(feature);
                if direction == gst::PadDirection::Sink && !has {
                    let mut with = f.to_owned();
                    with.add(feature);
                    out.append_structure_full(s.to_owned(), Some(with));
                } else if direction == gst::PadDirection::Src && has {
                    let mut without = f.to_owned();
                    without.remove(feature);
                    out.append_structure_full(s.to_owned(), Some(without));
                }
                out.append_structure_full(s.to_owned(), Some(f.to_owned()));
            }
            other
        };
        if let Some(filter) = filter {
            other = filter.intersect_with_mode(&other, gst::CapsIntersectMode::First);
        }
        gst::debug!(
            CAT,
            imp = self,
            "transformed {caps} ({direction:?}) into {other}"
        );
        Some(other)
    }

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Invalid caps {}", incaps))?;
        // As textoverlay: upstream caps with the feature mean upstream already lets buffers
        // carry compositions downstream; downstream taking caps with the feature lets it, and its
        // allocation answer (after these caps reach it) says whether it draws them.
        let output = match (
            has_composition_feature(incaps),
            has_composition_feature(outcaps),
        ) {
            (_, false) => Output::Blend,
            (true, true) => Output::Attach,
            (false, true) => Output::AskDownstream,
        };
        gst::debug!(CAT, imp = self, "{outcaps}: {output:?}");
        let mut state = lock(&self.state);
        state.info = Some(info);
        state.output = output;
        state.ask_on_reconfigure = output == Output::AskDownstream;
        drop(state);
        self.parent_set_caps(incaps, outcaps)
    }

    fn src_event(&self, event: gst::Event) -> bool {
        // Downstream changed (another sink, other allocation): ask it again before the next text.
        if event.type_() == gst::EventType::Reconfigure {
            let mut state = lock(&self.state);
            if state.ask_on_reconfigure {
                state.output = Output::AskDownstream;
            }
        }
        self.parent_src_event(event)
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
        let texts = self.texts(buffer, &settings);
        // Frames without a result pass untouched: not mapped, not written, no meta added.
        if texts.frame.is_none() && texts.regions.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let (info, output) = {
            let state = lock(&self.state);
            let Some(info) = state.info.clone() else {
                return Err(gst::FlowError::NotNegotiated);
            };
            (info, state.output)
        };
        let output = match output {
            Output::AskDownstream => {
                let attach = self.downstream_draws_compositions();
                let output = if attach {
                    Output::Attach
                } else {
                    Output::Blend
                };
                gst::debug!(CAT, imp = self, "downstream draws compositions: {attach}");
                let mut state = lock(&self.state);
                if state.output == Output::AskDownstream {
                    state.output = output;
                }
                output
            }
            output => output,
        };
        let composition = {
            let (width, height) = (info.width(), info.height());
            let mut state = lock(&self.state);
            let cached = match state.cached.take() {
                Some(c) if c.fits(&settings, width, height) => c,
                _ => Cached::new(&settings, width, height),
            };
            state.cached.insert(cached).composition(&texts)
        }
        .map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::LibraryError::Failed,
                ("Cannot render text: {}", e)
            );
            gst::FlowError::Error
        })?;
        // Only regions wholly outside the frame: nothing to draw.
        let Some(composition) = composition else {
            return Ok(gst::FlowSuccess::Ok);
        };
        if output == Output::Attach {
            attach(buffer, &composition);
            return Ok(gst::FlowSuccess::Ok);
        }
        let size = buffer.size();
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info).map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "Cannot map a buffer of {} bytes as a {}x{} {} frame",
                        size,
                        info.width(),
                        info.height(),
                        info.format()
                    )
                );
                gst::FlowError::Error
            })?;
        if let Err(e) = composition.blend(&mut frame) {
            gst::warning!(CAT, imp = self, "{e} into a {} frame", info.format());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl TorchOverlay {
    /// What `buffer` carries to draw: the caption of its full-frame result (our meta, or else the
    /// full-frame ROI meta's `torchclassify` param), and that of each other ROI meta with a
    /// `torchclassify` param (`torchclassify inference-region=roi-list`).
    fn texts(&self, buffer: &gst::BufferRef, settings: &Settings) -> Texts {
        let caption = |c: &crate::Classification| {
            render::caption(c, settings.show_top_k, settings.min_confidence)
        };
        let frame = meta::result(buffer).map(|c| caption(&c));
        let metas: Vec<_> = buffer
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .collect();
        let rois = metas
            .iter()
            .map(|m| (m.roi_type(), Rect::from_roi(m.rect()), m));
        let regions = regions::select(rois, meta::ROI_TYPE, |m| self.region_caption(m, settings));
        #[cfg(feature = "analytics")]
        let (frame, regions) = self.analytics_texts(buffer, frame, regions, caption);
        Texts { frame, regions }
    }

    /// A region's caption: its classification (a `torchclassify` param), else its detection (a
    /// `torchdetect` param: label and confidence), with its track id first (`#3`, a
    /// `torchtrack` param); None for a region with neither (not drawn).
    fn region_caption(
        &self,
        m: &gst_video::VideoRegionOfInterestMeta,
        settings: &Settings,
    ) -> Option<String> {
        let text = if let Some(param) = m.param(message::STRUCTURE_NAME) {
            match message::from_structure(param) {
                Ok(c) => render::caption(&c, settings.show_top_k, settings.min_confidence),
                Err(e) => {
                    gst::debug!(CAT, imp = self, "ROI {}: not drawn, its param: {e}", m.id());
                    return None;
                }
            }
        } else {
            let param = m.param(crate::detect::meta::STRUCTURE_NAME)?;
            let label = param.get::<&str>("label").ok()?;
            let confidence = param.get::<f64>("confidence").ok()?;
            render::label_caption(label, confidence, settings.min_confidence)
        };
        let track = m
            .param(crate::track::STRUCTURE_NAME)
            .and_then(|p| p.get::<u64>("id").ok());
        Some(match track {
            Some(id) => format!("#{id} {text}"),
            None => text,
        })
    }

    /// `texts` plus what the buffer's analytics meta holds that they lack: the full-frame
    /// `GstAnalyticsClsMtd` when there is no torchclassify result for the frame, and each
    /// `GstAnalyticsODMtd` with a related ClsMtd whose box (within the frame) no ROI meta drew.
    #[cfg(feature = "analytics")]
    fn analytics_texts(
        &self,
        buffer: &gst::BufferRef,
        frame: Option<String>,
        mut regions: Vec<(Rect, String)>,
        caption: impl Fn(&crate::Classification) -> String,
    ) -> (Option<String>, Vec<(Rect, String)>) {
        let (full, boxes) = crate::analytics::results(buffer);
        let frame = frame.or_else(|| full.map(|c| caption(&c)));
        let size = lock(&self.state)
            .info
            .as_ref()
            .map(|i| (i.width(), i.height()));
        let within = |r: &Rect| match size {
            Some((w, h)) => r.clip(w, h),
            None => Some(*r),
        };
        let drawn: Vec<Option<Rect>> = regions.iter().map(|(r, _)| within(r)).collect();
        for ((x, y, w, h), c) in boxes {
            let rect = Rect::new(x.into(), y.into(), w.into(), h.into());
            if !drawn.contains(&within(&rect)) {
                regions.push((rect, caption(&c)));
            }
        }
        (frame, regions)
    }

    /// Asks downstream (an allocation query for the current src caps) whether it takes
    /// `GstVideoOverlayCompositionMeta`.
    fn downstream_draws_compositions(&self) -> bool {
        let obj = self.obj();
        let pad = obj.src_pad();
        let Some(caps) = pad.current_caps() else {
            return false;
        };
        let mut query = gst::query::Allocation::new(Some(&caps), false);
        pad.peer_query(&mut query)
            && query
                .find_allocation_meta::<gst_video::VideoOverlayCompositionMeta>()
                .is_some()
    }
}
