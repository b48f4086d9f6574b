//! [`Classification`] ⇄ `GstStructure`: the `torchclassify` element message and the
//! `torchclassify` param of the ROI meta share this one layout, so field names can't drift apart.

use std::sync::Arc;
use std::time::Duration;
use torchcore::classify::{Classification, Prediction};
use torchcore::frame::{FrameInfo, Region};

/// Name of the message structure and of the ROI meta param.
pub const STRUCTURE_NAME: &str = "torchclassify";

/// A core time as a GStreamer clock time (None stays None: `GST_CLOCK_TIME_NONE`).
pub fn clock_time(t: Option<Duration>) -> Option<gst::ClockTime> {
    t.and_then(|t| gst::ClockTime::try_from(t).ok())
}

/// Sets a result's frame fields: `frame`, `timestamp`, and with `all` the stream's times
/// (`stream-time`, `running-time`, `duration`). torchdetect's box params and frame meta carry
/// only the first two.
pub(crate) fn set_frame(s: &mut gst::StructureRef, frame: &FrameInfo, all: bool) {
    s.set("frame", frame.number);
    s.set("timestamp", clock_time(frame.timestamp));
    if all {
        s.set("stream-time", clock_time(frame.stream_time));
        s.set("running-time", clock_time(frame.running_time));
        s.set("duration", clock_time(frame.duration));
    }
}

/// The frame that [`set_frame`]'s fields name; with `all` the stream's times must be there
/// too, else they are None.
pub(crate) fn frame_of(s: &gst::StructureRef, all: bool) -> Result<FrameInfo, String> {
    let err = |field: &str, e: &dyn std::fmt::Display| format!("field `{field}`: {e}");
    let time = |field: &str| {
        s.get::<Option<gst::ClockTime>>(field)
            .map(|t| t.map(Duration::from))
            .map_err(|e| err(field, &e))
    };
    let stream_time = |field: &str| if all { time(field) } else { Ok(None) };
    Ok(FrameInfo {
        number: s.get::<u64>("frame").map_err(|e| err("frame", &e))?,
        timestamp: time("timestamp")?,
        stream_time: stream_time("stream-time")?,
        running_time: stream_time("running-time")?,
        duration: stream_time("duration")?,
    })
}

/// Builds the structure:
///
/// | field | type | |
/// |---|---|---|
/// | `label` | string | top-1 label |
/// | `class-id` | int | top-1 class index |
/// | `confidence` | double | top-1 softmax probability, 0..1 |
/// | `top-k-labels` | array of string | best first |
/// | `top-k-ids` | array of int | |
/// | `top-k-confidences` | array of double | |
/// | `frame` | guint64 | number of the classified frame since start or flush |
/// | `timestamp` | guint64 (clock time) | PTS of the classified frame |
/// | `stream-time` | guint64 (clock time) | |
/// | `running-time` | guint64 (clock time) | |
/// | `duration` | guint64 (clock time) | |
/// | `inference-time` | guint64 (ns) | time in the model's forward |
///
/// Clock times that are unknown are `GST_CLOCK_TIME_NONE` (`G_MAXUINT64`).
pub fn to_structure(c: &Classification) -> gst::Structure {
    let top1 = c.top1();
    let mut s = gst::Structure::builder(STRUCTURE_NAME)
        .field("label", &*top1.label)
        .field("class-id", top1.class_id as i32)
        .field("confidence", top1.confidence)
        .field(
            "top-k-labels",
            gst::Array::new(c.top_k().iter().map(|p| &*p.label)),
        )
        .field(
            "top-k-ids",
            gst::Array::new(c.top_k().iter().map(|p| p.class_id as i32)),
        )
        .field(
            "top-k-confidences",
            gst::Array::new(c.top_k().iter().map(|p| p.confidence)),
        )
        .build();
    set_frame(&mut s, &c.frame, true);
    s.set(
        "inference-time",
        torchcore::results::nanos(c.inference_time),
    );
    s
}

/// The result carried by a `torchclassify` element message, or `None` for any other message.
///
/// ```no_run
/// # let bus: gst::Bus = unimplemented!();
/// for msg in bus.iter_timed(gst::ClockTime::NONE) {
///     if let Some(c) = gsttorch::message::from_message(&msg) {
///         println!("{} {:.2} (frame {})", c.label(), c.confidence(), c.frame.number);
///     }
/// }
/// ```
pub fn from_message(msg: &gst::MessageRef) -> Option<Classification> {
    match msg.view() {
        gst::MessageView::Element(e) => e
            .structure()
            .filter(|s| s.name() == STRUCTURE_NAME)
            .and_then(|s| from_structure(s).ok()),
        _ => None,
    }
}

/// Parses a structure built by [`to_structure`] (from a bus message or a ROI meta param) back
/// into a [`Classification`].
pub fn from_structure(s: &gst::StructureRef) -> Result<Classification, String> {
    if s.name() != STRUCTURE_NAME {
        return Err(format!(
            "structure is `{}`, not `{STRUCTURE_NAME}`",
            s.name()
        ));
    }
    let err = |field: &str, e: &dyn std::fmt::Display| format!("field `{field}`: {e}");
    let array = |field: &str| s.get::<gst::ArrayRef>(field).map_err(|e| err(field, &e));
    let labels = array("top-k-labels")?;
    let ids = array("top-k-ids")?;
    let confidences = array("top-k-confidences")?;
    if labels.len() != ids.len() || ids.len() != confidences.len() || ids.is_empty() {
        return Err("top-k arrays are empty or of different lengths".into());
    }
    let mut top_k = Vec::with_capacity(ids.len());
    for ((l, i), c) in labels.iter().zip(ids.iter()).zip(confidences.iter()) {
        top_k.push(Prediction {
            label: Arc::from(l.get::<&str>().map_err(|e| err("top-k-labels", &e))?),
            class_id: i.get::<i32>().map_err(|e| err("top-k-ids", &e))? as u32,
            confidence: c.get::<f64>().map_err(|e| err("top-k-confidences", &e))?,
        });
    }
    let frame = frame_of(s, true)?;
    let inference_time = Duration::from_nanos(
        s.get::<u64>("inference-time")
            .map_err(|e| err("inference-time", &e))?,
    );
    Classification::new(top_k, frame, inference_time)
        .ok_or_else(|| "no classes in top-k".to_string())
}

/// The structure of a region's result (`inference-region=roi-list`): [`to_structure`]'s fields
/// plus `roi-id` (int, the ROI meta's id), `roi-type` (string) and the region as classified,
/// clipped to the frame: `x`, `y`, `width`, `height` (uint).
pub fn region_structure(region: &Region, c: &Classification) -> gst::Structure {
    let mut s = to_structure(c);
    s.set("roi-id", region.id);
    s.set("roi-type", region.roi_type.as_str());
    s.set("x", region.x);
    s.set("y", region.y);
    s.set("width", region.width);
    s.set("height", region.height);
    s
}

/// Parses a structure built by [`region_structure`]; an error for one without the region
/// fields (a full-frame result).
pub fn region_from_structure(s: &gst::StructureRef) -> Result<(Region, Classification), String> {
    let c = from_structure(s)?;
    let err = |field: &str, e: &dyn std::fmt::Display| format!("field `{field}`: {e}");
    let uint = |field: &str| s.get::<u32>(field).map_err(|e| err(field, &e));
    let region = Region {
        id: s.get::<i32>("roi-id").map_err(|e| err("roi-id", &e))?,
        index: 0,
        roi_type: s
            .get::<&str>("roi-type")
            .map_err(|e| err("roi-type", &e))?
            .to_string(),
        x: uint("x")?,
        y: uint("y")?,
        width: uint("width")?,
        height: uint("height")?,
        od: None,
    };
    Ok((region, c))
}

/// The region and result carried by a `torchclassify` element message of `roi-list` mode, or
/// `None` for any other message (a full-frame result included).
pub fn region_from_message(msg: &gst::MessageRef) -> Option<(Region, Classification)> {
    match msg.view() {
        gst::MessageView::Element(e) => e
            .structure()
            .filter(|s| s.name() == STRUCTURE_NAME)
            .and_then(|s| region_from_structure(s).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        gst::init().unwrap();
        let c = Classification::new(
            vec![
                Prediction {
                    class_id: 967,
                    label: Arc::from("espresso"),
                    confidence: 0.9,
                },
                Prediction {
                    class_id: 968,
                    label: Arc::from("cup"),
                    confidence: 0.05,
                },
            ],
            FrameInfo {
                number: 3,
                timestamp: Some(Duration::from_millis(100)),
                stream_time: Some(Duration::from_millis(100)),
                running_time: None,
                duration: Some(Duration::from_millis(33)),
            },
            Duration::from_micros(2500),
        )
        .unwrap();
        let s = to_structure(&c);
        assert_eq!(s.get::<&str>("label").unwrap(), "espresso");
        assert_eq!(s.get::<i32>("class-id").unwrap(), 967);
        assert_eq!(s.get::<u64>("running-time").unwrap(), u64::MAX);
        assert_eq!(from_structure(&s).unwrap(), c);
        let other = gst::Structure::new_empty("other");
        assert!(from_structure(&other).is_err());
        let msg = gst::message::Element::new(s);
        assert_eq!(from_message(&msg), Some(c.clone()));
        assert_eq!(from_message(&gst::message::Element::new(other)), None);
        assert_eq!(from_message(&gst::message::Eos::new()), None);

        let region = Region {
            id: 4,
            index: 0,
            roi_type: "car".into(),
            x: 10,
            y: 20,
            width: 30,
            height: 40,
            od: None,
        };
        let s = region_structure(&region, &c);
        assert_eq!(s.get::<i32>("roi-id").unwrap(), 4);
        assert_eq!(
            region_from_structure(&s).unwrap(),
            (region.clone(), c.clone())
        );
        // A region's message is still a result for readers of full-frame ones.
        let msg = gst::message::Element::new(s);
        assert_eq!(from_message(&msg), Some(c.clone()));
        assert_eq!(region_from_message(&msg), Some((region, c.clone())));
        let frame_only = gst::message::Element::new(to_structure(&c));
        assert_eq!(region_from_message(&frame_only), None);
    }
}
