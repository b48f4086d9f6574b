//! JSON lines of results (`results-file`): one object per inference, written through a buffered
//! writer that the element flushes at EOS and when it stops.

use crate::classify::Classification;
use crate::frame::{FrameInfo, Region};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// One result as a JSON object:
/// `{"pts": ns|null, "frame": n, "label": s, "class-id": n, "confidence": x,
///   "top-k": [{"label": s, "id": n, "confidence": x}, …], "inference-ms": x}`.
pub fn to_json(c: &Classification) -> serde_json::Value {
    serde_json::json!({
        "pts": c.frame.timestamp.map(nanos),
        "frame": c.frame.number,
        "label": c.label(),
        "class-id": c.class_id(),
        "confidence": c.confidence(),
        "top-k": c.top_k().iter().map(|p| serde_json::json!({
            "label": &*p.label,
            "id": p.class_id,
            "confidence": p.confidence,
        })).collect::<Vec<_>>(),
        "inference-ms": millis(c.inference_time),
    })
}

/// The results of one frame's regions (`inference-region=roi-list`) as one JSON object:
/// `{"pts", "frame", "objects": [{"roi-id", "roi-type", "x", "y", "width", "height", "label",
/// "class-id", "confidence", "top-k"}, …], "inference-ms"}` (the model's time for all regions).
pub fn regions_to_json(
    frame: &FrameInfo,
    results: &[(Region, Classification)],
    time: Duration,
) -> serde_json::Value {
    serde_json::json!({
        "pts": frame.timestamp.map(nanos),
        "frame": frame.number,
        "objects": results.iter().map(|(r, c)| {
            let v = to_json(c);
            serde_json::json!({
                "roi-id": r.id,
                "roi-type": r.roi_type,
                "x": r.x,
                "y": r.y,
                "width": r.width,
                "height": r.height,
                "label": v["label"],
                "class-id": v["class-id"],
                "confidence": v["confidence"],
                "top-k": v["top-k"],
            })
        }).collect::<Vec<_>>(),
        "inference-ms": millis(time),
    })
}

/// A time as whole nanoseconds (a PTS in JSON).
pub fn nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

/// A duration in milliseconds.
pub fn millis(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

/// Where the lines go: a file, or standard output for `-`.
pub struct ResultsWriter(BufWriter<Box<dyn Write + Send>>);

impl ResultsWriter {
    /// Creates (truncates) `path`, or writes to stdout if it is `-`.
    pub fn create(path: &str) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = if path == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(Path::new(path))?)
        };
        Ok(ResultsWriter(BufWriter::new(sink)))
    }

    /// One JSON line.
    pub fn write_value(&mut self, v: &serde_json::Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.0, v)?;
        self.0.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Prediction;
    use std::sync::Arc;

    #[test]
    fn one_object_per_line_with_every_field() {
        let c = Classification::new(
            vec![
                Prediction {
                    class_id: 950,
                    label: Arc::from("orange"),
                    confidence: 0.75,
                },
                Prediction {
                    class_id: 951,
                    label: Arc::from("lemon"),
                    confidence: 0.25,
                },
            ],
            FrameInfo {
                number: 7,
                timestamp: Some(Duration::from_millis(700)),
                ..Default::default()
            },
            Duration::from_micros(2500),
        )
        .unwrap();
        let v = to_json(&c);
        assert_eq!(v["pts"], 700_000_000u64);
        assert_eq!(v["frame"], 7);
        assert_eq!(v["label"], "orange");
        assert_eq!(v["class-id"], 950);
        assert_eq!(v["confidence"], 0.75);
        assert_eq!(v["top-k"][1]["label"], "lemon");
        assert_eq!(v["top-k"][1]["id"], 951);
        assert_eq!(v["inference-ms"], 2.5);
        let mut none = c.clone();
        none.frame = FrameInfo::default();
        assert!(to_json(&none)["pts"].is_null());

        let path =
            std::env::temp_dir().join(format!("gst-torch-results-{}.jsonl", std::process::id()));
        let mut w = ResultsWriter::create(path.to_str().unwrap()).unwrap();
        w.write_value(&to_json(&c)).unwrap();
        w.write_value(&to_json(&none)).unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![to_json(&c), to_json(&none)]);
        assert!(ResultsWriter::create("/nonexistent/dir/x.jsonl").is_err());

        let region = Region {
            id: 2,
            index: 0,
            roi_type: "fruit".into(),
            x: 1,
            y: 2,
            width: 3,
            height: 4,
            od: None,
        };
        let v = regions_to_json(&c.frame, &[(region, c.clone())], Duration::from_millis(3));
        assert_eq!(v["frame"], 7);
        assert_eq!(v["inference-ms"], 3.0);
        let o = &v["objects"][0];
        assert_eq!(
            (o["roi-id"].clone(), o["roi-type"].clone()),
            (2.into(), "fruit".into())
        );
        assert_eq!((o["x"].clone(), o["height"].clone()), (1.into(), 4.into()));
        assert_eq!(
            (o["label"].clone(), o["class-id"].clone()),
            ("orange".into(), 950.into())
        );
        assert_eq!(o["top-k"][1]["label"], "lemon");
    }
}
