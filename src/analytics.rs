//! GStreamer 1.24+ analytics meta (`--features analytics`): results as `GstAnalyticsClsMtd` in
//! the buffer's `GstAnalyticsRelationMeta`, regions read from `GstAnalyticsODMtd` too;
//! torchdetect's boxes as ODMtds, torchtrack's ids as `GstAnalyticsTrackingMtd`s related from
//! them.
//!
//! - A full-frame result is a ClsMtd of the top-k classes (label quarks, confidences), related to
//!   nothing (as upstream's classifier tensor decoder writes it).
//! - A region's result (`inference-region=roi-list`) is a ClsMtd related to the ODMtd of its box
//!   with `GST_ANALYTICS_REL_TYPE_RELATE_TO`, from the ODMtd to the ClsMtd: what upstream's
//!   detectors write for a detection's class (gst-plugins-rs `yolotensordec`), and what the
//!   relation meta docs read back with `gst_analytics_relation_meta_get_direct_related (rmeta,
//!   od_id, RELATE_TO, cls type, ...)`. A region that came from a ROI meta with no ODMtd of the
//!   same box gets one (its ROI type as object type, location confidence 1.0: the ROI meta gives
//!   the box as certain), so readers of analytics meta alone see the boxes too.
//! - Duplicates: an ODMtd whose box (clipped to the frame) and type equal a selected ROI meta's is
//!   that ROI meta's region, not a second one: classified once, the result in the ROI meta's
//!   param and in a ClsMtd related to that ODMtd (no new ODMtd).

use gst::glib;
use gst_analytics::prelude::*;
use gst_analytics::{
    AnalyticsClassificationMtd, AnalyticsODMtd, AnalyticsRelationMeta, AnalyticsTrackingMtd,
    RelTypes,
};
use std::sync::{Arc, LazyLock};
use torchcore::classify::{Classification, Prediction};
use torchcore::frame::{FrameInfo, Region};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchanalytics",
        gst::DebugColorFlags::empty(),
        Some("GstAnalytics meta of the torch elements"),
    )
});

/// Adds an ODMtd of `label` at `(x, y, width, height)` (past i32's range: clamped).
fn add_od(
    meta: &mut gst::MetaRefMut<'_, AnalyticsRelationMeta, gst::meta::Standalone>,
    label: &str,
    (x, y, width, height): (u32, u32, u32, u32),
    confidence: f32,
) -> Result<u32, glib::BoolError> {
    let i = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let quark = glib::Quark::from_str(label);
    let od = meta.add_od_mtd(quark, i(x), i(y), i(width), i(height), confidence)?;
    Ok(od.id())
}

/// The relation from a region's ODMtd to the ClsMtd of its result.
pub const RELATION: RelTypes = RelTypes::RELATE_TO;

/// Location confidence of the ODMtd added for a ROI meta's box.
const ROI_LOCATION_CONFIDENCE: f32 = 1.0;

/// The part of an ODMtd's box inside a `frame` of width × height, as (x, y, width, height).
fn clip_location(
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    frame: (u32, u32),
) -> Option<(u32, u32, u32, u32)> {
    let (x, y, w, h) = (i64::from(x), i64::from(y), i64::from(w), i64::from(h));
    let x0 = x.max(0);
    let y0 = y.max(0);
    let x1 = (x + w).min(frame.0.into());
    let y1 = (y + h).min(frame.1.into());
    (x0 < x1 && y0 < y1).then(|| {
        // All within 0..=u32::MAX: bounded by the frame size.
        let u = |v: i64| u32::try_from(v).unwrap_or(0);
        (u(x0), u(y0), u(x1 - x0), u(y1 - y0))
    })
}

/// The id of the tracker's object an ODMtd is (a `GstAnalyticsTrackingMtd` it relates to), as a
/// ROI meta id; 0 without one (or one that does not fit).
fn tracking_id(meta: &gst::MetaRef<'_, AnalyticsRelationMeta>, od: u32) -> i32 {
    meta.iter_direct_related::<AnalyticsTrackingMtd>(od, RELATION)
        .next()
        .and_then(|t| i32::try_from(t.info().0).ok())
        .unwrap_or(0)
}

/// An ODMtd of the buffer as a region of a `frame`-sized frame (clipped), with its id.
struct Detection {
    od: u32,
    region: Region,
}

/// The buffer's ODMtds inside the frame, in the relation meta's order.
fn detections(buffer: &gst::BufferRef, frame: (u32, u32)) -> Vec<Detection> {
    let Some(meta) = buffer.meta::<AnalyticsRelationMeta>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for od in meta.iter::<AnalyticsODMtd>() {
        let Ok(loc) = od.location() else { continue };
        let Some(rect) = clip_location(loc.x, loc.y, loc.w, loc.h, frame) else {
            continue;
        };
        let roi_type = od.obj_type().map_or("", |q| q.as_str());
        let Some(region) = Region::clipped(tracking_id(&meta, od.id()), roi_type, rect, frame)
        else {
            continue;
        };
        out.push(Detection {
            od: od.id(),
            region: Region {
                index: Region::NO_ROI,
                od: Some(od.id()),
                ..region
            },
        });
    }
    out
}

/// Whether two regions are the same box of the same type.
fn same_box(a: &Region, b: &Region) -> bool {
    (a.x, a.y, a.width, a.height) == (b.x, b.y, b.width, b.height) && a.roi_type == b.roi_type
}

/// `inference-region=roi-list`: adds to `out` (the ROI metas' regions selected) the buffer's
/// ODMtds `selects` (`object-class` against the ODMtd's type, `min-roi-size`). One with the box and
/// type of a region in `out` is that region's ODMtd (`Region::od`), not another region.
pub fn select(
    selects: impl Fn(&Region) -> bool,
    buffer: &gst::BufferRef,
    frame: (u32, u32),
    out: &mut Vec<Region>,
) {
    let rois = out.len();
    for d in detections(buffer, frame) {
        if let Some(r) = out[..rois]
            .iter_mut()
            .find(|r| r.od.is_none() && same_box(r, &d.region))
        {
            r.od = Some(d.od);
            continue;
        }
        if selects(&d.region) {
            out.push(d.region);
        }
    }
}

/// The buffer's relation meta, added if it has none (None: GStreamer did not add it).
fn relation_meta(
    buffer: &mut gst::BufferRef,
) -> Option<gst::MetaRefMut<'_, AnalyticsRelationMeta, gst::meta::Standalone>> {
    if buffer.meta::<AnalyticsRelationMeta>().is_none() {
        AnalyticsRelationMeta::add(buffer);
    }
    buffer.meta_mut::<AnalyticsRelationMeta>()
}

/// Adds the ClsMtd of `c` (its top-k labels as quarks, confidences) to `meta`; its id.
fn add_cls(
    meta: &mut gst::MetaRefMut<'_, AnalyticsRelationMeta, gst::meta::Standalone>,
    c: &Classification,
) -> Result<u32, glib::BoolError> {
    let levels: Vec<f32> = c.top_k().iter().map(|p| p.confidence as f32).collect();
    let quarks: Vec<glib::Quark> = c
        .top_k()
        .iter()
        .map(|p| glib::Quark::from_str(&*p.label))
        .collect();
    Ok(meta.add_cls_mtd(&levels, &quarks)?.id())
}

/// A full-frame result: its ClsMtd, related to nothing.
pub fn attach(buffer: &mut gst::BufferRef, c: &Classification) {
    let Some(mut meta) = relation_meta(buffer) else {
        return;
    };
    if let Err(e) = add_cls(&mut meta, c) {
        gst::warning!(
            CAT,
            "Cannot add the classification to the analytics meta: {e}"
        );
    }
}

/// Region results: each one's ClsMtd, related from its region's ODMtd (one added for a region
/// without: a ROI meta's box).
pub fn attach_regions(buffer: &mut gst::BufferRef, results: &[(Region, Classification)]) {
    if results.is_empty() {
        return;
    }
    let Some(mut meta) = relation_meta(buffer) else {
        return;
    };
    for (region, c) in results {
        let related = (|| {
            let od = match region.od {
                Some(od) => od,
                None => {
                    let rect = (region.x, region.y, region.width, region.height);
                    add_od(&mut meta, &region.roi_type, rect, ROI_LOCATION_CONFIDENCE)?
                }
            };
            let cls = add_cls(&mut meta, c)?;
            meta.set_relation(RELATION, od, cls)
        })();
        if let Err(e) = related {
            gst::warning!(
                CAT,
                "Cannot add region {}'s result to the analytics meta: {e}",
                region.id
            );
        }
    }
}

/// torchdetect's boxes: an ODMtd per box (its label as object type, its confidence as the
/// location's).
pub fn attach_objects(buffer: &mut gst::BufferRef, objects: &[torchcore::detected::Object]) {
    if objects.is_empty() {
        return;
    }
    let Some(mut meta) = relation_meta(buffer) else {
        return;
    };
    for o in objects {
        let rect = (o.x, o.y, o.width, o.height);
        if let Err(e) = add_od(&mut meta, &o.label, rect, o.confidence as f32) {
            gst::warning!(CAT, "Cannot add box {} to the analytics meta: {e}", o.id);
        }
    }
}

/// torchtrack's ids: a TrackingMtd per tracked box (`first_seen` of its id), related from the
/// ODMtd of the same box and type (added if there is none, as for a ROI meta's box).
pub fn attach_tracks(
    buffer: &mut gst::BufferRef,
    tracks: &[((u32, u32, u32, u32), String, u64)],
    first_seen: impl Fn(u64) -> gst::ClockTime,
    size: Option<(u32, u32)>,
) {
    if tracks.is_empty() {
        return;
    }
    let frame = size.unwrap_or((u32::MAX, u32::MAX));
    let boxes = detections(buffer, frame);
    let Some(mut meta) = relation_meta(buffer) else {
        return;
    };
    for (rect, label, id) in tracks {
        let region = Region::clipped(0, label, *rect, frame);
        let od = region
            .as_ref()
            .and_then(|r| boxes.iter().find(|d| same_box(&d.region, r)).map(|d| d.od));
        let related = (|| {
            let od = match od {
                Some(od) => od,
                None => add_od(&mut meta, label, *rect, ROI_LOCATION_CONFIDENCE)?,
            };
            let tracking = meta.add_tracking_mtd(*id, first_seen(*id))?.id();
            meta.set_relation(RELATION, od, tracking)
        })();
        if let Err(e) = related {
            gst::warning!(CAT, "Cannot add track {id} to the analytics meta: {e}");
        }
    }
}

/// A frame the model did not run on (`inference-interval`, `async`): the analytics meta of the
/// newest region results `given` to its ROI metas (by [`crate::meta::carry_regions`]: ROI meta
/// index, result), and of those for its ODMtds that no ROI meta has, by the same rule (the ODMtd's
/// tracker id, found once among `latest` and once on the buffer).
pub fn carry_regions(
    buffer: &mut gst::BufferRef,
    frame: (u32, u32),
    latest: &[(Region, Classification)],
    given: &[(usize, Classification)],
) {
    if latest.is_empty() {
        return;
    }
    // Each ROI meta's region (None: wholly outside the frame), by position.
    let rois: Vec<Option<Region>> = buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .enumerate()
        .map(|(index, m)| {
            Region::clipped(m.id(), m.roi_type(), m.rect(), frame).map(|r| Region { index, ..r })
        })
        .collect();
    let mut detections = detections(buffer, frame);
    let mut results = Vec::new();
    for (index, c) in given {
        let Some(Some(roi)) = rois.get(*index) else {
            continue;
        };
        let mut region = roi.clone();
        if let Some(at) = detections.iter().position(|d| same_box(roi, &d.region)) {
            region.od = Some(detections.remove(at).od);
        }
        results.push((region, c.clone()));
    }
    // The rest: ODMtds without a ROI meta of their box.
    detections.retain(|d| !rois.iter().flatten().any(|r| same_box(r, &d.region)));
    let once_here = |id: i32| detections.iter().filter(|d| d.region.id == id).count() == 1;
    for d in &detections {
        let id = d.region.id;
        let mut same = latest
            .iter()
            .filter(|(r, _)| r.index == Region::NO_ROI && r.id == id);
        if let (Some((_, c)), None) = (same.next(), same.next())
            && once_here(id)
        {
            results.push((d.region.clone(), c.clone()));
        }
    }
    attach_regions(buffer, &results);
}

/// A box as an ODMtd has it: x, y, width, height (it may reach outside the frame).
pub type Location = (i32, i32, i32, i32);

/// The buffer's analytics results as `torchoverlay` draws them: the full-frame one (the first
/// ClsMtd related from no ODMtd), and each ODMtd's box with the (first) ClsMtd it relates to.
pub fn results(
    buffer: &gst::BufferRef,
) -> (Option<Classification>, Vec<(Location, Classification)>) {
    let Some(meta) = buffer.meta::<AnalyticsRelationMeta>() else {
        return (None, Vec::new());
    };
    let ods: Vec<u32> = meta.iter::<AnalyticsODMtd>().map(|od| od.id()).collect();
    let frame = meta
        .iter::<AnalyticsClassificationMtd>()
        .filter(|cls| {
            !ods.iter()
                .any(|&od| meta.relation(od, cls.id()).contains(RELATION))
        })
        .find_map(|cls| classification(&cls));
    let mut regions = Vec::new();
    for od in meta.iter::<AnalyticsODMtd>() {
        let Ok(loc) = od.location() else { continue };
        if let Some(c) = meta
            .iter_direct_related::<AnalyticsClassificationMtd>(od.id(), RELATION)
            .find_map(|cls| classification(&cls))
        {
            regions.push(((loc.x, loc.y, loc.w, loc.h), c));
        }
    }
    (frame, regions)
}

/// A ClsMtd as a result (class ids unknown: 0; no frame information); None when empty.
pub fn classification(
    cls: &gst_analytics::AnalyticsMtdRef<'_, AnalyticsClassificationMtd>,
) -> Option<Classification> {
    let top_k = cls
        .iterate()
        .map(|(quark, level)| Prediction {
            class_id: 0,
            label: Arc::from(quark.as_str().as_str()),
            confidence: f64::from(level),
        })
        .collect();
    Classification::new(top_k, FrameInfo::default(), std::time::Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn od_boxes_are_clipped_to_the_frame() {
        let frame = (640, 480);
        assert_eq!(clip_location(10, 20, 30, 40, frame), Some((10, 20, 30, 40)));
        assert_eq!(clip_location(-10, -20, 30, 40, frame), Some((0, 0, 20, 20)));
        assert_eq!(
            clip_location(600, 400, 100, 100, frame),
            Some((600, 400, 40, 80))
        );
        assert_eq!(clip_location(640, 0, 10, 10, frame), None);
        assert_eq!(clip_location(0, 0, 0, 10, frame), None);
        assert_eq!(clip_location(0, 0, -5, 10, frame), None);
        assert_eq!(
            clip_location(i32::MIN, i32::MIN, i32::MAX, i32::MAX, frame),
            None
        );
        assert_eq!(
            clip_location(0, 0, i32::MAX, i32::MAX, frame),
            Some((0, 0, 640, 480))
        );
    }

    /// A buffer with ROI metas and ODMtds: `(type, x, y, w, h)` each.
    fn buffer(
        rois: &[(&str, u32, u32, u32, u32)],
        ods: &[(&str, i32, i32, i32, i32)],
    ) -> gst::Buffer {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().unwrap();
        for (t, x, y, w, h) in rois {
            gst_video::VideoRegionOfInterestMeta::add(b, t, (*x, *y, *w, *h));
        }
        let mut meta = AnalyticsRelationMeta::add(b);
        for (t, x, y, w, h) in ods {
            meta.add_od_mtd(glib::Quark::from_str(*t), *x, *y, *w, *h, 0.5)
                .unwrap();
        }
        buffer
    }

    fn roi_regions(buffer: &gst::BufferRef, frame: (u32, u32)) -> Vec<Region> {
        buffer
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .enumerate()
            .filter_map(|(index, m)| {
                Region::clipped(m.id(), m.roi_type(), m.rect(), frame)
                    .map(|r| Region { index, ..r })
            })
            .collect()
    }

    #[test]
    fn an_od_of_a_roi_s_box_and_type_is_that_region() {
        let frame = (640, 480);
        let b = buffer(
            &[("car", 10, 10, 100, 100), ("face", 200, 200, 50, 50)],
            &[
                ("car", 10, 10, 100, 100), // the first ROI's
                ("dog", 200, 200, 50, 50), // the second's box, another type: its own
                ("face", 300, 10, 60, 60), // its own
                ("face", 700, 10, 60, 60), // outside the frame
            ],
        );
        let mut out = roi_regions(&b, frame);
        select(|_| true, &b, frame, &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.roi_type.as_str(), r.index, r.od, r.x))
            .collect();
        assert_eq!(
            got,
            [
                ("car", 0, Some(0), 10),
                ("face", 1, None, 200),
                ("dog", Region::NO_ROI, Some(1), 200),
                ("face", Region::NO_ROI, Some(2), 300),
            ]
        );
        // object-class and min-roi-size apply to ODMtds as to ROI metas.
        let mut out = roi_regions(&b, frame);
        out.retain(|r| r.roi_type == "face");
        select(|r| r.roi_type == "face", &b, frame, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].od, Some(2));
    }

    #[test]
    fn results_are_related_from_their_od_and_read_back() {
        let frame = (640, 480);
        let mut b = buffer(&[("car", 10, 10, 100, 100)], &[("dog", 300, 10, 60, 60)]);
        let mut out = roi_regions(&b, frame);
        select(|_| true, &b, frame, &mut out);
        let c = |label: &str| {
            Classification::new(
                vec![Prediction {
                    class_id: 1,
                    label: Arc::from(label),
                    confidence: 0.75,
                }],
                FrameInfo::default(),
                std::time::Duration::ZERO,
            )
            .unwrap()
        };
        let results: Vec<_> = out.iter().map(|r| (r.clone(), c(&r.roi_type))).collect();
        attach_regions(b.get_mut().unwrap(), &results);
        attach(b.get_mut().unwrap(), &c("frame"));
        let (full, boxes) = super::results(&b);
        assert_eq!(full.unwrap().label(), "frame");
        let mut boxes: Vec<_> = boxes
            .into_iter()
            .map(|(rect, c)| (rect, c.label().to_string(), c.confidence()))
            .collect();
        boxes.sort_by_key(|b| b.0);
        assert_eq!(
            boxes,
            [
                ((10, 10, 100, 100), "car".to_string(), 0.75),
                ((300, 10, 60, 60), "dog".to_string(), 0.75),
            ]
        );
    }
}
