//! What `torchdetect` does with its model: a detector's outputs (`yolov8`, `yolov5` or `boxes`)
//! decoded by the core into boxes in frame pixels, through the letterbox (or crop, or stretch)
//! the frame was fitted with; results as one ROI meta per box, a message and a JSON line per
//! frame, and a `GstTorchDetectMeta` on each frame the detector ran on.

use crate::infer::element::{Element, Inference};
use crate::infer::{Task, backend, loader};
use crate::lock;
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;
use torchcore::batch::{self, JobResult, Outputs, Packing};
use torchcore::detect::{
    DecodeConfig, DecodeStats, Decoder, Detection, Mapping, OutputFormat, ResolvedFormat,
    TensorView, resolve_format,
};
use torchcore::detected::Detected;
use torchcore::frame::{Frame, FrameInfo};
use torchcore::labels::Labels;
use torchcore::preprocess::Preprocessor;
use torchcore::settings::{DetectReading, DetectSettings, LabelsChoice, Resolved, Settings};
use torchcore::stats::Stats;

/// See the module docs.
pub struct Detect;

/// How a detector's outputs read: its format and labels, the decoding defaults (properties,
/// else the model config file, else the element's defaults) and the decoder's buffers.
pub struct Reading {
    pub labels: Labels,
    pub format: ResolvedFormat,
    pub defaults: DetectReading,
    decoder: Mutex<(Decoder, Vec<Detection>)>,
}

/// What one frame's way reads from the settings: the decoding properties set while playing
/// (None: the model's reading), the classes to keep and the smallest box.
pub struct Params {
    pub threshold: Option<f64>,
    pub iou_threshold: Option<f64>,
    pub max_detections: Option<u32>,
    pub object_class: Vec<String>,
    pub min_size: u32,
}

/// A job's frame: its size and how the model's input maps back to it.
#[derive(Default)]
pub struct Payload {
    pub size: (u32, u32),
    pub mapping: Mapping,
}

/// What the detector said about a frame, and what became of its candidates.
#[derive(Debug, Clone)]
pub struct Found {
    pub detected: Detected,
    pub stats: DecodeStats,
}

/// The newest result, and whether a frame has carried it (each result goes out on one frame:
/// its own, or in async mode the first to leave after it).
#[derive(Default)]
pub struct Latest {
    found: Option<Found>,
    attached: bool,
}

/// The models torchdetect elements share by `model-instance-id`.
static REGISTRY: LazyLock<loader::Shared<Detect>> = LazyLock::new(Default::default);

/// Name of the ROI meta param, the bus message and the frame meta's structure.
pub const STRUCTURE_NAME: &str = "torchdetect";

/// The output format asked for: the property set, else the model config file's.
fn output_format(settings: &Settings<DetectSettings>, resolved: &Resolved) -> OutputFormat {
    settings
        .task
        .output_format
        .or_file(resolved.file.output_format)
}

/// The outputs as the decoder reads them.
fn views(outputs: &Outputs) -> Vec<TensorView<'_>> {
    outputs
        .tensors
        .iter()
        .map(|t| TensorView::new(&t.data, &t.shape))
        .collect()
}

impl Task for Detect {
    type Settings = DetectSettings;
    type Payload = Payload;
    /// The format asked for and the number of labels given (None: none given).
    type Expect = (OutputFormat, Option<usize>);
    type Reading = Reading;
    type Params = Params;
    type Inferred = Found;
    type Latest = Latest;

    const NAME: &'static str = "torchdetect";

    fn max_batch(_: &Settings<DetectSettings>) -> usize {
        1
    }

    fn expect(
        settings: &Settings<DetectSettings>,
        resolved: &Resolved,
        labels: Option<&Labels>,
        _: &LabelsChoice,
    ) -> Result<(OutputFormat, Option<usize>), String> {
        Ok((output_format(settings, resolved), labels.map(Labels::len)))
    }

    /// A detector's output in the format asked for (or one `auto` can tell), with one label per
    /// class when labels were given.
    fn check(
        (format, labels): &(OutputFormat, Option<usize>),
        outputs: &Outputs,
    ) -> Result<(), String> {
        if let Packing::Other(kind) = outputs.packing {
            return Err(format!(
                "its output is {kind}, not a detector's tensors (property 'output-format': \
                 {format})"
            ));
        }
        resolve_format(*format, &outputs.shapes(), *labels)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn reading(
        settings: &Settings<DetectSettings>,
        resolved: &Resolved,
        labels: Option<Labels>,
        loaded: &batch::Loaded,
    ) -> Result<Reading, String> {
        let defaults = settings.task.resolve(&resolved.file)?;
        let asked = output_format(settings, resolved);
        let count = labels.as_ref().map(Labels::len);
        let format =
            resolve_format(asked, &loaded.output_shapes, count).map_err(|e| e.to_string())?;
        // No labels given: COCO's 80 for an 80-class model, else class ids name the classes.
        let labels = match (labels, format.builtin_labels()) {
            (Some(labels), _) => labels,
            (None, Some(coco)) => coco,
            (None, None) => {
                let n = format.num_classes().unwrap_or(0).max(1);
                Labels::from_list((0..n).map(|i| format!("class {i}")).collect())
                    .map_err(|e| e.to_string())?
            }
        };
        let decoder = Decoder::new(format, DecodeConfig::default());
        Ok(Reading {
            labels,
            format,
            defaults,
            decoder: Mutex::new((decoder, Vec::new())),
        })
    }

    fn classes(reading: &Reading) -> usize {
        reading.labels.len()
    }

    fn params(settings: &Settings<DetectSettings>) -> Params {
        let s = &settings.task;
        Params {
            threshold: s.threshold.if_set(),
            iou_threshold: s.iou_threshold.if_set(),
            max_detections: s.max_detections.if_set(),
            object_class: s.object_class.clone(),
            min_size: s.min_size,
        }
    }

    fn fill(
        _: &Params,
        preprocessor: &mut Preprocessor,
        frame: &Frame,
        _: &gst::BufferRef,
        size: (u32, u32),
        _: u64,
        buffers: &mut batch::Buffers<Payload>,
        _: &Reading,
    ) -> Result<(), String> {
        buffers.count = 1;
        buffers.payload = Payload {
            size,
            mapping: preprocessor.mapping(),
        };
        backend::fill_whole(preprocessor, frame, &mut buffers.input)
    }

    fn read(
        buffers: &mut batch::Buffers<Payload>,
        result: JobResult,
        reading: &Reading,
        params: &Params,
        frame: FrameInfo,
    ) -> Result<Found, String> {
        let time = result.map_err(|e| format!("inference failed: {e}"))?;
        let outputs = buffers
            .outputs
            .first()
            .ok_or_else(|| "the model gave no outputs".to_string())?;
        let d = &reading.defaults;
        let config = DecodeConfig {
            threshold: params.threshold.unwrap_or(d.threshold) as f32,
            iou_threshold: params.iou_threshold.unwrap_or(d.iou_threshold) as f32,
            max_detections: params.max_detections.unwrap_or(d.max_detections) as usize,
            min_size: params.min_size as f32,
            object_class: reading.labels.ids(&params.object_class),
        };
        let Payload { size, mapping } = &buffers.payload;
        let mut decoding = lock(&reading.decoder);
        let (decoder, boxes) = &mut *decoding;
        if *decoder.config() != config {
            decoder.set_config(config);
        }
        let stats = decoder
            .decode(&views(outputs), mapping, size.0, size.1, boxes)
            .map_err(|e| format!("Cannot decode the detector's output: {e}"))?;
        let detected = Detected::new(boxes, &reading.labels, *size, frame, time);
        Ok(Found { detected, stats })
    }

    fn record(latest: &mut Latest, stats: &mut Stats, found: &Found) {
        stats.inference(found.detected.inference_time);
        stats.count("detections", found.detected.objects.len() as u64);
        stats.count("dropped-invalid", found.stats.dropped_invalid as u64);
        stats.count("dropped-small", found.stats.dropped_small as u64);
        latest.found = Some(found.clone());
        latest.attached = false;
    }

    fn attach(
        buffer: &mut gst::BufferRef,
        _: (u32, u32),
        fresh: Option<&Found>,
        latest: &mut Latest,
    ) {
        let found = match fresh {
            Some(found) => Some(found),
            None if !latest.attached => latest.found.as_ref(),
            None => None,
        };
        if let Some(found) = found {
            super::meta::attach(buffer, &found.detected);
        }
        latest.attached |= found.is_some();
    }

    fn posts(
        found: &Found,
        post_messages: bool,
        messages: &mut Vec<gst::Structure>,
    ) -> Option<serde_json::Value> {
        if post_messages {
            messages.push(super::meta::to_structure(&found.detected));
        }
        Some(found.detected.to_json())
    }

    fn time(found: &Found) -> Option<Duration> {
        Some(found.detected.inference_time)
    }

    fn registry() -> &'static loader::Shared<Detect> {
        &REGISTRY
    }

    fn inference(element: &Element) -> Option<&Inference<Detect>> {
        element
            .downcast_ref::<super::TorchDetect>()
            .map(|e| e.imp().inference())
    }
}
