//! `torchdetect`'s results on buffers and the bus, and reading them back:
//!
//! - one `GstVideoRegionOfInterestMeta` per box: roi type = its label, id = `-1`, `-2`, … (a
//!   box number on this frame; a tracker gives positive ids), a `torchdetect` param with
//!   `label`, `class-id`, `confidence`, `frame` and `timestamp`;
//! - a `GstTorchDetectMeta` (a GStreamer custom meta) on each frame the detector's result is
//!   for, holding a `torchdetect` structure of `frame`, `timestamp` and `objects` (the count):
//!   it tells a tracker that the detector ran (a frame without it was skipped, by
//!   `inference-interval`), and a frame with no box from one the detector did not look at;
//! - with the `analytics` feature, a `GstAnalyticsODMtd` per box too;
//! - the `torchdetect` element message: the frame's fields and `objects`, an array of `object`
//!   structures (`roi-id`, `label`, `class-id`, `confidence`, `x`, `y`, `width`, `height`).

pub use super::task::STRUCTURE_NAME;
use crate::message::{frame_of, set_frame};
use gst::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use torchcore::detected::{Detected, Object};
use torchcore::frame::FrameInfo;

/// The custom meta's name.
pub const FRAME_META: &str = "GstTorchDetectMeta";

/// Registers the custom meta (once per process).
pub fn register() {
    if !gst::meta::CustomMeta::is_registered(FRAME_META) {
        gst::meta::CustomMeta::register_simple(FRAME_META);
    }
}

/// A box's `torchdetect` param on its ROI meta.
fn param(o: &Object, frame: &FrameInfo) -> gst::Structure {
    let mut s = gst::Structure::builder(STRUCTURE_NAME)
        .field("label", &*o.label)
        .field("class-id", o.class_id)
        .field("confidence", o.confidence)
        .build();
    set_frame(&mut s, frame, false);
    s
}

/// Attaches the result to the buffer: the frame meta, a ROI meta per box (and with the
/// `analytics` feature an ODMtd per box).
pub fn attach(buffer: &mut gst::BufferRef, detected: &Detected) {
    if let Ok(mut meta) = gst::meta::CustomMeta::add(buffer, FRAME_META) {
        let s = meta.mut_structure();
        s.set_name(STRUCTURE_NAME);
        set_frame(s, &detected.frame, false);
        s.set("objects", detected.objects.len() as u32);
    }
    for o in &detected.objects {
        let mut roi = gst_video::VideoRegionOfInterestMeta::add(
            buffer,
            &o.label,
            (o.x, o.y, o.width, o.height),
        );
        roi.set_id(o.id);
        roi.add_param(param(o, &detected.frame));
    }
    #[cfg(feature = "analytics")]
    crate::analytics::attach_objects(buffer, &detected.objects);
}

/// The `torchdetect` element message of a frame's result.
pub fn to_structure(detected: &Detected) -> gst::Structure {
    let objects = gst::Array::new(detected.objects.iter().map(|o| {
        gst::Structure::builder("object")
            .field("roi-id", o.id)
            .field("label", &*o.label)
            .field("class-id", o.class_id)
            .field("confidence", o.confidence)
            .field("x", o.x)
            .field("y", o.y)
            .field("width", o.width)
            .field("height", o.height)
            .build()
            .to_send_value()
    }));
    let mut s = gst::Structure::builder(STRUCTURE_NAME)
        .field("objects", objects)
        .field(
            "inference-time",
            torchcore::results::nanos(detected.inference_time),
        )
        .build();
    set_frame(&mut s, &detected.frame, true);
    s
}

/// The result a `torchdetect` element message carries; None for any other message.
pub fn from_message(msg: &gst::MessageRef) -> Option<Detected> {
    let gst::MessageView::Element(e) = msg.view() else {
        return None;
    };
    let s = e.structure().filter(|s| s.name() == STRUCTURE_NAME)?;
    from_structure(s).ok()
}

/// Parses a structure made by [`to_structure`].
pub fn from_structure(s: &gst::StructureRef) -> Result<Detected, String> {
    let err = |field: &str, e: &dyn std::fmt::Display| format!("field `{field}`: {e}");
    let objects = s
        .get::<gst::ArrayRef>("objects")
        .map_err(|e| err("objects", &e))?;
    let objects = objects
        .iter()
        .map(|v| {
            let o = v.get::<gst::Structure>().map_err(|e| err("objects", &e))?;
            let uint = |f: &str| o.get::<u32>(f).map_err(|e| err(f, &e));
            Ok(Object {
                id: o.get::<i32>("roi-id").map_err(|e| err("roi-id", &e))?,
                label: Arc::from(o.get::<&str>("label").map_err(|e| err("label", &e))?),
                class_id: uint("class-id")?,
                confidence: o
                    .get::<f64>("confidence")
                    .map_err(|e| err("confidence", &e))?,
                x: uint("x")?,
                y: uint("y")?,
                width: uint("width")?,
                height: uint("height")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let inference_time = Duration::from_nanos(
        s.get::<u64>("inference-time")
            .map_err(|e| err("inference-time", &e))?,
    );
    Ok(Detected {
        frame: frame_of(s, true)?,
        objects,
        inference_time,
    })
}

/// The frame whose detector result a buffer carries (its `GstTorchDetectMeta`), if any.
pub fn detected_frame(buffer: &gst::BufferRef) -> Option<FrameInfo> {
    let meta = gst::meta::CustomMeta::from_buffer(buffer, FRAME_META).ok()?;
    frame_of(meta.structure(), false).ok()
}

/// A buffer's boxes, read from its ROI metas' `torchdetect` params as a C or Python
/// application would, in meta order (the ids and boxes as the metas now have them: a tracker
/// may have changed the ids). None when the buffer carries no detector result.
pub fn from_buffer(buffer: &gst::BufferRef) -> Option<Detected> {
    let frame = detected_frame(buffer)?;
    let objects = buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter_map(|m| {
            let p = m.param(STRUCTURE_NAME)?;
            let (x, y, width, height) = m.rect();
            Some(Object {
                id: m.id(),
                label: Arc::from(p.get::<&str>("label").ok()?),
                class_id: p.get::<u32>("class-id").ok()?,
                confidence: p.get::<f64>("confidence").ok()?,
                x,
                y,
                width,
                height,
            })
        })
        .collect();
    Some(Detected {
        frame,
        objects,
        inference_time: Duration::ZERO,
    })
}
