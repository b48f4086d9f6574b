//! The model as the scheduler's [`Backend`]: a frame mapped and prepared into the model's input,
//! a job's logits turned into a [`Classification`] for the frame it ran on.

use gst_video::prelude::*;
use std::time::Duration;
use torchcore::batch::{self, JobResult};
use torchcore::classify::{self, Activation, Classification};
use torchcore::frame::{Frame, FrameFormat, FrameInfo, Region};
use torchcore::labels::Labels;
use torchcore::preprocess::{InputSpec, Preprocessor};
use torchcore::scheduler::{Backend, Ticket};

/// The classifier's model: jobs carry the regions their images were taken from.
pub type Model = batch::Model<Vec<Region>>;
/// A job's buffers.
pub type Buffers = batch::Buffers<Vec<Region>>;
/// What the model thread does with an async job's result.
pub type OnResult = batch::OnResult<Vec<Region>>;

/// What the negotiated caps fix: the frame layout and the converter built for it.
pub struct Format {
    pub info: gst_video::VideoInfo,
    pub preprocessor: Preprocessor,
}

impl Format {
    /// The converter from frames of `info` to the model's `input`; None for a format the element
    /// does not take.
    pub fn new(info: gst_video::VideoInfo, input: &InputSpec) -> Option<Format> {
        let preprocessor = Preprocessor::new(Self::frame_format(&info)?, input);
        Some(Format { info, preprocessor })
    }

    /// The same frames into another model's input (a hot swap).
    pub fn with_input(&self, input: &InputSpec) -> Option<Format> {
        Format::new(self.info.clone(), input)
    }

    fn frame_format(info: &gst_video::VideoInfo) -> Option<FrameFormat> {
        Some(FrameFormat {
            width: info.width() as usize,
            height: info.height() as usize,
            pixels: crate::video::pixel_format(info.format())?,
            matrix: crate::video::yuv_matrix(info),
        })
    }
}

/// How a model's outputs read: its labels, the activation and the threshold.
#[derive(Debug, Clone)]
pub struct Reading {
    pub labels: Labels,
    pub output: Activation,
    pub threshold: f64,
}

/// The negotiated frame's width and height (0 x 0 before caps), for the full-frame ROI meta.
pub fn frame_size(format: Option<&Format>) -> (u32, u32) {
    format.map_or((0, 0), |f| (f.info.width(), f.info.height()))
}

/// What the model said about a frame.
#[derive(Debug, Clone)]
pub enum Inferred {
    Classified(Classification),
    /// Its best class was below `threshold`: no result; the model's time.
    BelowThreshold(Duration),
    /// `inference-region=roi-list`: the regions classified (each with its result), how many were
    /// below `threshold`, and the model's time for all of them (none when the frame had no
    /// region to classify).
    Regions {
        results: Vec<(Region, Classification)>,
        below_threshold: u64,
        time: Option<Duration>,
    },
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
            let roi_type = meta.roi_type();
            if roi_type == crate::meta::ROI_TYPE
                && meta.param(crate::message::STRUCTURE_NAME).is_some()
            {
                continue;
            }
            if let Some(region) = Region::clipped(meta.id(), roi_type, meta.rect(), frame)
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

/// What a job's output is for a frame: what the model said, or the error that replaced it.
pub type Output = Result<Inferred, String>;

/// An error found under a lock, to post once it is released.
pub struct Failure {
    pub flow: gst::FlowError,
    pub message: gst::ErrorMessage,
}

/// A prepared input: the model's buffers and the frame they hold.
pub struct Prepared {
    pub buffers: Buffers,
    pub frame: FrameInfo,
}

/// The model, how to read it and `top-k`, as the scheduler's backend.
pub struct Run<'a> {
    pub model: &'a Model,
    pub reading: &'a Reading,
    pub top_k: usize,
    /// `inference-region=roi-list`.
    pub regions: bool,
}

impl Backend for Run<'_> {
    type Input = Prepared;
    type Output = Output;

    fn input(&self) -> Prepared {
        Prepared {
            buffers: self.model.buffers(),
            frame: FrameInfo::default(),
        }
    }

    fn recycle(&self, input: Prepared) {
        self.model.recycle(input.buffers);
    }

    fn queue(&self, ticket: Ticket, input: Prepared) {
        self.model.queue(ticket, input.buffers, input.frame);
    }

    fn submit(&self, input: Prepared) {
        self.model.submit(input.buffers, input.frame);
    }

    fn wait(&self, ticket: Ticket) -> Option<Output> {
        let mut reply = self.model.wait(ticket)?;
        let output = read(
            &mut reply.buffers,
            reply.result,
            self.regions,
            (self.reading, self.top_k),
            reply.frame,
        );
        self.model.recycle(reply.buffers);
        Some(output)
    }

    fn discard_queued(&self) {
        self.model.discard_pending();
    }
}

/// A finished job's outputs: the frame's result, or in roi-list mode each region's; a failed
/// job's error.
pub fn read(
    buffers: &mut Buffers,
    result: JobResult,
    regions: bool,
    (reading, top_k): (&Reading, usize),
    frame: FrameInfo,
) -> Output {
    let time = result.map_err(|e| format!("inference failed: {e}"))?;
    let classes = reading.labels.len();
    let Buffers {
        outputs,
        count,
        payload,
        ..
    } = buffers;
    if !regions {
        return classification(scores(outputs, 0, classes)?, reading, top_k, frame, time);
    }
    let count = (*count).min(payload.len());
    let mut results = Vec::with_capacity(count);
    let mut below_threshold = 0;
    let each = time / count.max(1) as u32;
    for (i, region) in payload.iter().take(count).enumerate() {
        match classification(scores(outputs, i, classes)?, reading, top_k, frame, each)? {
            Inferred::Classified(c) => results.push((region.clone(), c)),
            _ => below_threshold += 1,
        }
    }
    Ok(Inferred::Regions {
        results,
        below_threshold,
        time: (count > 0).then_some(time),
    })
}

/// Image `i`'s `classes` scores.
fn scores(
    outputs: &mut [torchcore::batch::Outputs],
    i: usize,
    classes: usize,
) -> Result<&mut [f32], String> {
    outputs
        .get_mut(i)
        .and_then(|o| o.tensors.first_mut())
        .and_then(|t| t.data.get_mut(..classes))
        .ok_or_else(|| format!("Model returned no classes for image {i}"))
}

/// The outputs read as `reading` says, top-k, into a result for `frame`.
pub fn classification(
    scores: &mut [f32],
    reading: &Reading,
    top_k: usize,
    frame: FrameInfo,
    time: Duration,
) -> Output {
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

/// Fills `buffers` with the model's input for the frame in `buffer`: the whole frame, or with a
/// `selection` each region it selects (`buffers.regions`, `buffers.count`; the input grows for
/// more regions than it holds and keeps that size).
pub fn prepare(
    format: Option<&mut Format>,
    buffer: &gst::BufferRef,
    selection: Option<&Selection>,
    buffers: &mut Buffers,
) -> Result<(), Failure> {
    let failure = |flow, message| Failure { flow, message };
    let Some(format) = format else {
        return Err(failure(
            gst::FlowError::NotNegotiated,
            gst::error_msg!(gst::CoreError::Negotiation, ("No caps set")),
        ));
    };
    let info = &format.info;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).map_err(|_| {
        failure(
            gst::FlowError::Error,
            gst::error_msg!(
                gst::StreamError::Format,
                (
                    "Cannot map a buffer of {} bytes as a {}x{} {} frame (caps say {} bytes)",
                    buffer.size(),
                    info.width(),
                    info.height(),
                    info.format().to_str(),
                    info.size()
                )
            ),
        )
    })?;
    let bad = |e: String| {
        failure(
            gst::FlowError::Error,
            gst::error_msg!(gst::StreamError::Format, ("Bad frame: {}", e)),
        )
    };
    let width_height = (info.width(), info.height());
    // At most three planes (I420, YV12); on the stack, nothing allocated per frame.
    let mut planes = Frame::default();
    for i in 0..frame.n_planes().min(Frame::MAX_PLANES as u32) {
        let data = frame
            .plane_data(i)
            .map_err(|e| bad(format!("plane {i}: {e}")))?;
        let stride = usize::try_from(frame.plane_stride()[i as usize])
            .map_err(|_| bad(format!("plane {i}: negative stride")))?;
        planes.push(data, stride);
    }
    let (planes, strides) = (planes.planes(), planes.strides());
    let preprocessor = &mut format.preprocessor;
    let Some(selection) = selection else {
        buffers.count = 1;
        buffers.payload.clear();
        let len = preprocessor.output_len();
        let have = buffers.input.len();
        let input = buffers
            .input
            .get_mut(..len)
            .ok_or_else(|| bad(format!("model input of {have} floats")))?;
        return preprocessor
            .run(planes, strides, input)
            .map_err(|e| bad(e.to_string()));
    };
    selection.regions(buffer, width_height, &mut buffers.payload);
    buffers.count = buffers.payload.len();
    let len = preprocessor.output_len();
    if buffers.input.len() < buffers.count * len {
        buffers.input.resize(buffers.count * len, 0.0);
    }
    for (region, input) in buffers
        .payload
        .iter()
        .zip(buffers.input.chunks_exact_mut(len))
    {
        preprocessor.set_region(Some((region.x, region.y, region.width, region.height)));
        let done = preprocessor.run(planes, strides, input);
        done.map_err(|e| bad(e.to_string()))?;
    }
    // The preprocessor stays on the last region: in roi-list mode (fixed while running) every
    // frame sets its own regions, and the whole frame's tables are never used.
    Ok(())
}

pub fn frame_info(
    buffer: &gst::BufferRef,
    number: u64,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
) -> FrameInfo {
    let pts = buffer.pts();
    let time = |t: Option<gst::ClockTime>| t.map(Duration::from);
    FrameInfo {
        number,
        timestamp: time(pts),
        stream_time: time(segment.and_then(|s| s.to_stream_time(pts?))),
        running_time: time(segment.and_then(|s| s.to_running_time(pts?))),
        duration: time(buffer.duration()),
    }
}
