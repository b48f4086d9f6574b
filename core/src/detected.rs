//! What a detector said about a frame, as the element carries it everywhere (ROI metas, the bus
//! message, JSON lines, MQTT, the overlay): the boxes in whole frame pixels with their labels.

use crate::detect::Detection;
use crate::frame::FrameInfo;
use crate::labels::Labels;
use crate::results::{millis, nanos};
use std::sync::Arc;
use std::time::Duration;

/// One box of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The box's id on the frame: `-1`, `-2`, … in confidence order (negative: a box number,
    /// not a track; a tracker gives positive ids).
    pub id: i32,
    pub label: Arc<str>,
    pub class_id: u32,
    pub confidence: f64,
    /// Whole frame pixels, inside the frame.
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// A frame's boxes, most confident first, the frame they were found on and the model's time.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub frame: FrameInfo,
    pub objects: Vec<Object>,
    pub inference_time: Duration,
}

impl Detected {
    /// The decoder's boxes of a `width` × `height` frame as objects, with `labels`.
    pub fn new(
        detections: &[Detection],
        labels: &Labels,
        (width, height): (u32, u32),
        frame: FrameInfo,
        inference_time: Duration,
    ) -> Detected {
        let objects = detections
            .iter()
            .zip(1..)
            .map(|(d, n)| {
                let (x, y, w, h) = d.pixel_rect(width, height);
                Object {
                    id: -n,
                    label: labels.name(d.class_id as usize),
                    class_id: d.class_id,
                    confidence: f64::from(d.confidence),
                    x,
                    y,
                    width: w,
                    height: h,
                }
            })
            .collect();
        Detected {
            frame,
            objects,
            inference_time,
        }
    }

    /// As a JSON line: `{"pts", "frame", "objects": [{"roi-id", "roi-type", "x", "y", "width",
    /// "height", "label", "class-id", "confidence"}], "inference-ms"}` (`roi-type` is the
    /// label, as on the ROI meta).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pts": self.frame.timestamp.map(nanos),
            "frame": self.frame.number,
            "objects": self.objects.iter().map(|o| serde_json::json!({
                "roi-id": o.id,
                "roi-type": &*o.label,
                "x": o.x,
                "y": o.y,
                "width": o.width,
                "height": o.height,
                "label": &*o.label,
                "class-id": o.class_id,
                "confidence": o.confidence,
            })).collect::<Vec<_>>(),
            "inference-ms": millis(self.inference_time),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_become_whole_pixel_objects_with_labels_and_json() {
        let labels = Labels::from_list(vec!["red".into(), "green".into()]).unwrap();
        let d = |x, y, class_id, confidence| Detection {
            x,
            y,
            width: 10.4,
            height: 20.0,
            class_id,
            confidence,
        };
        let frame = FrameInfo {
            number: 4,
            timestamp: Some(Duration::from_millis(400)),
            ..FrameInfo::default()
        };
        let found = Detected::new(
            &[d(1.5, 2.0, 1, 0.9), d(315.0, 230.0, 7, 0.5)],
            &labels,
            (320, 240),
            frame,
            Duration::from_millis(12),
        );
        let o = &found.objects;
        assert_eq!((o[0].id, &*o[0].label, o[0].class_id), (-1, "green", 1));
        // Rounded outward: 1.5..11.9 covers pixels 1..12.
        assert_eq!((o[0].x, o[0].y, o[0].width, o[0].height), (1, 2, 11, 20));
        // Inside the frame; an unlabelled class is named by its id.
        assert_eq!((o[1].id, &*o[1].label), (-2, "class 7"));
        assert_eq!((o[1].x + o[1].width, o[1].y + o[1].height), (320, 240));
        let v = found.to_json();
        assert_eq!(v["pts"], 400_000_000u64);
        assert_eq!(v["frame"], 4);
        assert_eq!(v["objects"][0]["roi-type"], "green");
        assert_eq!(v["objects"][0]["roi-id"], -1);
        assert_eq!(v["objects"][1]["class-id"], 7);
        assert_eq!(v["inference-ms"], 12.0);
    }
}
