//! GStreamer glue of `torchtrack`: properties, caps, flush, and per frame the ROI metas in and
//! their ids (and predicted boxes) out; the tracking is the core's (`track::Session`).
//!
//! Lock order: `settings` before `state`; nothing is posted while either is held.

use crate::lock;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
#[cfg(feature = "analytics")]
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use torchcore::geometry::Rect;
use torchcore::track::{Seen, Session, TrackerConfig};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchtrack",
        gst::DebugColorFlags::empty(),
        Some("Tracker of regions of interest"),
    )
});

/// Name of the ROI meta param with a box's track id.
pub const STRUCTURE_NAME: &str = "torchtrack";

/// Counters behind `stats`.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    frames: u64,
    /// Boxes given an id, and boxes added where a track was predicted.
    tracked: u64,
    predicted: u64,
}

struct State {
    session: Session,
    /// The frame's size, for predicted boxes (none before caps).
    size: Option<(u32, u32)>,
    /// When each live track was first seen (its first box's PTS), for the analytics meta.
    #[cfg(feature = "analytics")]
    first_seen: HashMap<u64, gst::ClockTime>,
    counts: Counts,
}

impl Default for State {
    fn default() -> Self {
        State {
            session: Session::new(TrackerConfig::default()),
            size: None,
            #[cfg(feature = "analytics")]
            first_seen: HashMap::new(),
            counts: Counts::default(),
        }
    }
}

#[derive(Default)]
pub struct TorchTrack {
    settings: Mutex<TrackerConfig>,
    state: Mutex<State>,
}

/// Whether a ROI meta is a box to track: not torchclassify's full-frame result, not a box this
/// element predicted.
fn trackable(meta: &gst_video::VideoRegionOfInterestMeta) -> bool {
    !crate::meta::is_full_frame(meta) && meta.param(STRUCTURE_NAME).is_none()
}

/// The boxes of a buffer's trackable ROI metas, in meta order.
fn boxes(buffer: &gst::BufferRef) -> Vec<Seen> {
    buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter(|m| trackable(m))
        .map(|m| {
            let (x, y, w, h) = m.rect();
            let score = m
                .param(crate::detect::meta::STRUCTURE_NAME)
                .and_then(|p| p.get::<f64>("confidence").ok())
                .map(|c| c as f32);
            Seen {
                rect: Rect::new(x as f32, y as f32, w as f32, h as f32),
                score,
                label: m.roi_type().to_string(),
            }
        })
        .collect()
}

fn param(id: u64, predicted: bool) -> gst::Structure {
    gst::Structure::builder(STRUCTURE_NAME)
        .field("id", id)
        .field("predicted", predicted)
        .build()
}

impl TorchTrack {
    /// Tracks the buffer's boxes: each trackable ROI meta with a confirmed track gets its id
    /// (the meta's id, and a `torchtrack` param); on a frame the detector skipped, a ROI meta per
    /// predicted track.
    fn track(&self, buffer: &mut gst::BufferRef) {
        let config = lock(&self.settings).clone();
        let marked = crate::detect::meta::detected_frame(buffer).is_some();
        let seen = boxes(buffer);
        let mut state = lock(&self.state);
        state.session.set_config(config);
        let step = state.session.frame(marked, &seen);
        let size = state.size;
        state.counts.frames += 1;
        let mut tracks = Vec::new();
        let mut ids = step.ids.iter();
        for mut meta in buffer.iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>() {
            if !trackable(&meta) {
                continue;
            }
            let Some(Some(id)) = ids.next() else { continue };
            meta.set_id(i32::try_from(*id).unwrap_or(i32::MAX));
            meta.add_param(param(*id, false));
            tracks.push((meta.rect(), meta.roi_type().to_string(), *id));
        }
        state.counts.tracked += tracks.len() as u64;
        for p in &step.predicted {
            let Some((width, height)) = size else { break };
            let rect = p.rect.pixel_rect(width, height);
            let mut meta = gst_video::VideoRegionOfInterestMeta::add(buffer, &p.label, rect);
            meta.set_id(i32::try_from(p.id).unwrap_or(i32::MAX));
            meta.add_param(param(p.id, true));
            state.counts.predicted += 1;
            tracks.push((rect, p.label.clone(), p.id));
        }
        #[cfg(feature = "analytics")]
        {
            let pts = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
            let State {
                session,
                first_seen,
                ..
            } = &mut *state;
            // Only live tracks' (ids are never given again).
            first_seen.retain(|&id, _| session.has_track(id));
            for (_, _, id) in &tracks {
                first_seen.entry(*id).or_insert(pts);
            }
            let first = |id: u64| first_seen.get(&id).copied().unwrap_or(pts);
            crate::analytics::attach_tracks(buffer, &tracks, first, size);
        }
        let live = state.session.tracks();
        drop(state);
        gst::trace!(CAT, imp = self, "{} boxes, {} tracks", seen.len(), live);
    }
}

#[glib::object_subclass]
impl ObjectSubclass for TorchTrack {
    const NAME: &'static str = "GstTorchTrack";
    type Type = super::TorchTrack;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for TorchTrack {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = TrackerConfig::default();
            vec![
                glib::ParamSpecFloat::builder("iou-threshold")
                    .nick("IoU threshold")
                    .blurb(
                        "The least intersection over union between a track's predicted box and \
                         a box for them to match",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.iou_threshold)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("max-age")
                    .nick("Maximum age")
                    .blurb(
                        "Frames a track is kept (and predicted) after its last matched box: an \
                         object hidden for up to this many frames keeps its id",
                    )
                    .default_value(d.max_age)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-hits")
                    .nick("Minimum hits")
                    .blurb(
                        "Matched boxes (in a row) before a track gets an id; until then its \
                         boxes keep the detector's id. 1: from the first box",
                    )
                    .minimum(1)
                    .default_value(d.min_hits)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("high-threshold")
                    .nick("High threshold")
                    .blurb(
                        "Boxes at least this confident are matched first and can start tracks \
                         (boxes without a confidence count as 1)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.high_threshold)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("low-threshold")
                    .nick("Low threshold")
                    .blurb(
                        "Boxes at least this confident (and below high-threshold) only continue \
                         tracks that were tracked on the previous frame (ByteTrack's second \
                         stage); less confident ones are ignored",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.low_threshold)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("per-class")
                    .nick("Per class")
                    .blurb("Match boxes only to tracks of the same label (ROI type)")
                    .default_value(d.per_class)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "torchtrack-stats: frames, tracked (boxes given a track id), predicted \
                         (boxes added on frames the detector skipped), tracks (live now)",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        use crate::infer::properties::get;
        let mut s = lock(&self.settings);
        match pspec.name() {
            "iou-threshold" => s.iou_threshold = get(value),
            "max-age" => s.max_age = get(value),
            "min-hits" => s.min_hits = get(value),
            "high-threshold" => s.high_threshold = get(value),
            "low-threshold" => s.low_threshold = get(value),
            "per-class" => s.per_class = get(value),
            _ => {}
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            let state = lock(&self.state);
            let c = state.counts;
            return gst::Structure::builder("torchtrack-stats")
                .field("frames", c.frames)
                .field("tracked", c.tracked)
                .field("predicted", c.predicted)
                .field("tracks", state.session.tracks() as u64)
                .build()
                .to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "iou-threshold" => s.iou_threshold.to_value(),
            "max-age" => s.max_age.to_value(),
            "min-hits" => s.min_hits.to_value(),
            "high-threshold" => s.high_threshold.to_value(),
            "low-threshold" => s.low_threshold.to_value(),
            "per-class" => s.per_class.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for TorchTrack {}

impl ElementImpl for TorchTrack {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Object tracker",
                "Filter/Analyzer/Video",
                "Gives the regions of interest (GstVideoRegionOfInterestMeta) of each frame, \
                 torchdetect's or any detector's, ids that stay with their objects from frame to \
                 frame (IoU matching with constant-velocity Kalman prediction, ByteTrack's two \
                 stages): the meta's id and a `torchtrack` param; on frames torchdetect skipped \
                 (inference-interval), a region where each track is predicted; with the \
                 analytics feature, a GstAnalyticsTrackingMtd related from each box's ODMtd",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::video::sink_src_templates(&gst::Caps::builder("video/x-raw").build())
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for TorchTrack {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let size = gst_video::VideoInfo::from_caps(incaps)
            .ok()
            .map(|i| (i.width(), i.height()));
        lock(&self.state).size = size;
        self.parent_set_caps(incaps, outcaps)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = State::default();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            let mut state = lock(&self.state);
            state.session.reset();
            #[cfg(feature = "analytics")]
            state.first_seen.clear();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.track(buffer);
        Ok(gst::FlowSuccess::Ok)
    }
}
