//! What `torchclassify` does with its model: `[1, N]` class scores read into a
//! [`Classification`] of the whole frame, or of each region of interest (`roi-list`), with
//! `reclassify-interval` for tracked regions; results as our meta and the ROI meta, a message
//! per result and a JSON line per frame.

use crate::infer::element::{Element, Inference};
use crate::infer::{Task, backend, loader};
use crate::{message, meta};
use gst::prelude::*;
use gst::subclass::prelude::*;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;
use torchcore::batch::{self, JobResult, Outputs, Packing};
use torchcore::classify::{self, Activation, Classification, Reclassify};
use torchcore::frame::{Frame, FrameInfo, Region};
use torchcore::labels::Labels;
use torchcore::preprocess::Preprocessor;
use torchcore::results;
use torchcore::settings::{ClassifySettings, InferenceRegion, LabelsChoice, Resolved, Settings};
use torchcore::stats::Stats;

/// See the module docs.
pub struct Classify;

/// How a model's outputs read: its labels, the activation and the threshold; and which tracked
/// regions were sent to it when.
pub struct Reading {
    pub labels: Labels,
    pub output: Activation,
    pub threshold: f64,
    reclassify: Mutex<Reclassify>,
}

/// What one frame's way reads from the settings.
pub struct Params {
    pub top_k: usize,
    /// `inference-region=roi-list`: which regions.
    pub selection: Option<Selection>,
    /// `reclassify-interval`.
    pub reclassify: u32,
}

/// A job's regions: those whose images it holds, and the tracked ones not due that carry
/// their newest result.
#[derive(Default)]
pub struct Payload {
    pub regions: Vec<Region>,
    pub carried: Vec<Region>,
}

/// What the model said about a frame.
#[derive(Debug, Clone)]
pub enum Inferred {
    Classified(Classification),
    /// Its best class was below `threshold`: no result; the model's time.
    BelowThreshold(Duration),
    /// `inference-region=roi-list`: the regions classified (each with its result), how many were
    /// below `threshold`, the regions that carry their track's newest result, and the model's
    /// time for all of them (none when the frame had no region to classify).
    Regions {
        results: Vec<(Region, Classification)>,
        below_threshold: u64,
        carried: Vec<Region>,
        time: Option<Duration>,
    },
}

/// What frames without a fresh result carry.
#[derive(Default)]
pub struct Latest {
    /// The newest full-frame result.
    frame: Option<Classification>,
    /// roi-list mode: the newest results of the regions (given again to ROI metas of the same
    /// ids: a tracker keeps ids).
    regions: Vec<(Region, Classification)>,
}

/// Which regions of a frame `inference-region=roi-list` classifies.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// ROI types (empty: all).
    pub object_class: Vec<String>,
    /// Smallest width and height, after clipping to the frame.
    pub min_size: u32,
}

impl Selection {
    /// The buffer's regions of interest this selection classifies, clipped to the frame, in the
    /// buffer's meta order, into `out` (cleared first). The full-frame ROI meta this element
    /// attaches (type `classification`, with our param) is never one. With the `analytics`
    /// feature, then the buffer's `GstAnalyticsODMtd`s ([`crate::analytics::select`]).
    pub fn regions(&self, buffer: &gst::BufferRef, frame: (u32, u32), out: &mut Vec<Region>) {
        out.clear();
        for (index, meta) in buffer
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .enumerate()
        {
            if meta::is_full_frame(&meta) {
                continue;
            }
            if let Some(region) = Region::clipped(meta.id(), meta.roi_type(), meta.rect(), frame)
                && self.selects(&region)
            {
                out.push(Region { index, ..region });
            }
        }
        #[cfg(feature = "analytics")]
        crate::analytics::select(|r| self.selects(r), buffer, frame, out);
    }

    /// Whether a region (clipped to the frame) is of a selected type and large enough.
    fn selects(&self, region: &Region) -> bool {
        (self.object_class.is_empty() || self.object_class.contains(&region.roi_type))
            && region.width >= self.min_size
            && region.height >= self.min_size
    }
}

/// Image `i`'s `classes` scores.
fn scores(outputs: &mut [Outputs], i: usize, classes: usize) -> Result<&mut [f32], String> {
    outputs
        .get_mut(i)
        .and_then(|o| o.scores_mut(classes))
        .ok_or_else(|| format!("Model returned no classes for image {i}"))
}

/// The outputs read as `reading` says, top-k, into a result for `frame`.
fn classification(
    scores: &mut [f32],
    reading: &Reading,
    top_k: usize,
    frame: FrameInfo,
    time: Duration,
) -> Result<Inferred, String> {
    let top_k = classify::classify(
        scores,
        top_k,
        &reading.labels,
        reading.output,
        reading.threshold,
    )
    .ok_or_else(|| "Model returned no classes".to_string())?;
    Ok(match Classification::new(top_k, frame, time) {
        Some(c) => Inferred::Classified(c),
        None => Inferred::BelowThreshold(time),
    })
}

/// The models torchclassify elements share by `model-instance-id`.
static REGISTRY: LazyLock<loader::Shared<Classify>> = LazyLock::new(Default::default);

/// How long a track that was not classified is remembered (frames).
const RECLASSIFY_HORIZON: u64 = 1000;

impl Task for Classify {
    type Settings = ClassifySettings;
    type Payload = Payload;
    /// The number of labels, and where they came from.
    type Expect = (usize, String);
    type Reading = Reading;
    type Params = Params;
    type Inferred = Inferred;
    type Latest = Latest;

    const NAME: &'static str = "torchclassify";

    fn max_batch(settings: &Settings<ClassifySettings>) -> usize {
        // Whole frames go one at a time; roi-list batches a frame's regions.
        match settings.task.inference_region {
            InferenceRegion::FullFrame => 1,
            InferenceRegion::RoiList => settings.task.max_batch as usize,
        }
    }

    fn expect(
        _: &Settings<ClassifySettings>,
        _: &Resolved,
        labels: Option<&Labels>,
        choice: &LabelsChoice,
    ) -> Result<(usize, String), String> {
        let count = labels.map_or_else(|| Labels::imagenet().len(), Labels::len);
        let source = loader::labels_source(choice, "the built-in ImageNet labels");
        Ok((count, source))
    }

    /// `[1, N]` class scores, N the number of labels.
    fn check((labels, source): &(usize, String), outputs: &Outputs) -> Result<(), String> {
        let n = match (outputs.packing, outputs.tensors.as_slice()) {
            (Packing::Tensor, [t]) => match t.shape.as_slice() {
                &[1, n] if n > 0 => n,
                shape => {
                    return Err(format!(
                        "its output has shape {shape:?}, not [1, N] class scores: not an image \
                         classifier"
                    ));
                }
            },
            (packing, _) => {
                return Err(format!(
                    "its output is {}, not a [1, N] tensor of class scores: not an image \
                     classifier",
                    packing.describe()
                ));
            }
        };
        if n != *labels {
            return Err(format!(
                "it outputs {n} classes but {source} has {labels} labels"
            ));
        }
        Ok(())
    }

    fn reading(
        settings: &Settings<ClassifySettings>,
        resolved: &Resolved,
        labels: Option<Labels>,
        _: &batch::Loaded,
    ) -> Result<Reading, String> {
        let r = settings.task.resolve(&resolved.file)?;
        Ok(Reading {
            labels: labels.unwrap_or_else(Labels::imagenet),
            output: r.output,
            threshold: r.threshold,
            reclassify: Mutex::default(),
        })
    }

    fn classes(reading: &Reading) -> usize {
        reading.labels.len()
    }

    fn params(settings: &Settings<ClassifySettings>) -> Params {
        let s = &settings.task;
        Params {
            top_k: s.top_k as usize,
            selection: (s.inference_region == InferenceRegion::RoiList).then(|| Selection {
                object_class: s.object_class.clone(),
                min_size: s.min_roi_size,
            }),
            reclassify: s.reclassify_interval,
        }
    }

    /// The whole frame, or with a selection each region it selects that is due (the input grows
    /// for more regions than it holds and keeps that size).
    fn fill(
        params: &Params,
        preprocessor: &mut Preprocessor,
        frame: &Frame,
        buffer: &gst::BufferRef,
        size: (u32, u32),
        number: u64,
        buffers: &mut batch::Buffers<Payload>,
        reading: &Reading,
    ) -> Result<(), String> {
        let Some(selection) = &params.selection else {
            buffers.count = 1;
            buffers.payload.regions.clear();
            return backend::fill_whole(preprocessor, frame, &mut buffers.input);
        };
        let (planes, strides) = (frame.planes(), frame.strides());
        let len = preprocessor.output_len();
        let Payload { regions, carried } = &mut buffers.payload;
        selection.regions(buffer, size, regions);
        carried.clear();
        if params.reclassify > 1 {
            let mut due = crate::lock(&reading.reclassify);
            due.prune(
                number,
                RECLASSIFY_HORIZON.max(4 * u64::from(params.reclassify)),
            );
            // Each region asked once, in order; the ones not due move to `carried`.
            let not_due = regions.extract_if(.., |r| !due.due(r.id, number, params.reclassify));
            carried.extend(not_due);
        }
        buffers.count = regions.len();
        if buffers.input.len() < buffers.count * len {
            buffers.input.resize(buffers.count * len, 0.0);
        }
        for (region, input) in regions.iter().zip(buffers.input.chunks_exact_mut(len)) {
            preprocessor.set_region(Some((region.x, region.y, region.width, region.height)));
            preprocessor
                .run(planes, strides, input)
                .map_err(|e| e.to_string())?;
        }
        // The preprocessor stays on the last region: in roi-list mode (fixed while running)
        // every frame sets its own regions, and the whole frame's tables are never used.
        Ok(())
    }

    fn read(
        buffers: &mut batch::Buffers<Payload>,
        result: JobResult,
        reading: &Reading,
        params: &Params,
        frame: FrameInfo,
    ) -> Result<Inferred, String> {
        let time = result.map_err(|e| format!("inference failed: {e}"))?;
        let classes = reading.labels.len();
        let batch::Buffers {
            outputs,
            count,
            payload,
            ..
        } = buffers;
        if params.selection.is_none() {
            return classification(
                scores(outputs, 0, classes)?,
                reading,
                params.top_k,
                frame,
                time,
            );
        }
        let count = (*count).min(payload.regions.len());
        let mut results = Vec::with_capacity(count);
        let mut below_threshold = 0;
        let each = time / count.max(1) as u32;
        for (i, region) in payload.regions.iter().take(count).enumerate() {
            let scores = scores(outputs, i, classes)?;
            match classification(scores, reading, params.top_k, frame, each)? {
                Inferred::Classified(c) => results.push((region.clone(), c)),
                _ => below_threshold += 1,
            }
        }
        Ok(Inferred::Regions {
            results,
            below_threshold,
            carried: std::mem::take(&mut payload.carried),
            time: (count > 0).then_some(time),
        })
    }

    fn record(latest: &mut Latest, stats: &mut Stats, inferred: &Inferred) {
        match inferred {
            Inferred::Classified(c) => {
                stats.inference(c.inference_time);
                latest.frame = Some(c.clone());
            }
            // Buffers after it carry no result: the newest one says nothing.
            Inferred::BelowThreshold(time) => {
                stats.inference(*time);
                stats.below_threshold += 1;
                latest.frame = None;
            }
            Inferred::Regions {
                results,
                below_threshold,
                carried,
                time,
            } => {
                // A frame without regions to classify ran no model.
                if let Some(time) = time {
                    stats.inference(*time);
                }
                stats.regions += results.len() as u64 + below_threshold;
                stats.below_threshold += below_threshold;
                stats.regions_carried += carried.len() as u64;
                // The newest: this frame's results, and the carried tracks' older ones.
                let older = std::mem::take(&mut latest.regions);
                latest.regions = results.clone();
                latest.regions.extend(
                    older
                        .into_iter()
                        .filter(|(r, _)| carried.iter().any(|c| c.id == r.id)),
                );
            }
        }
    }

    fn attach(
        buffer: &mut gst::BufferRef,
        (width, height): (u32, u32),
        fresh: Option<&Inferred>,
        latest: &mut Latest,
    ) {
        if let Some(c) = &latest.frame {
            meta::attach(buffer, c.clone(), width, height);
        }
        match fresh {
            Some(Inferred::Regions {
                results, carried, ..
            }) => {
                meta::attach_regions(buffer, results);
                if !carried.is_empty() {
                    meta::carry_regions(buffer, &latest.regions, (width, height));
                }
            }
            _ => meta::carry_regions(buffer, &latest.regions, (width, height)),
        }
    }

    fn posts(
        inferred: &Inferred,
        post_messages: bool,
        messages: &mut Vec<gst::Structure>,
    ) -> Option<serde_json::Value> {
        match inferred {
            Inferred::Classified(c) => {
                if post_messages {
                    messages.push(message::to_structure(c));
                }
                Some(results::to_json(c))
            }
            Inferred::BelowThreshold(_) => None,
            // roi-list mode: one JSON line for the frame's classified regions, one message per
            // region.
            Inferred::Regions {
                results,
                time: Some(time),
                ..
            } => {
                let (_, first) = results.first()?;
                if post_messages {
                    messages.extend(results.iter().map(|(r, c)| message::region_structure(r, c)));
                }
                Some(results::regions_to_json(&first.frame, results, *time))
            }
            Inferred::Regions { .. } => None,
        }
    }

    fn time(inferred: &Inferred) -> Option<Duration> {
        match inferred {
            Inferred::Classified(c) => Some(c.inference_time),
            Inferred::BelowThreshold(time) => Some(*time),
            Inferred::Regions { time, .. } => *time,
        }
    }

    fn registry() -> &'static loader::Shared<Classify> {
        &REGISTRY
    }

    fn inference(element: &Element) -> Option<&Inference<Classify>> {
        element
            .downcast_ref::<super::TorchClassify>()
            .map(|e| e.imp().inference())
    }
}
