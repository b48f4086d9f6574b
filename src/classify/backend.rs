//! The model as the scheduler's [`Backend`]: a frame mapped and prepared into the model's input,
//! a job's logits turned into a [`Classification`] for the frame it ran on.

use super::scheduler::{Backend, Ticket};
use crate::inference::{Buffers, Model};
use crate::labels::Labels;
use crate::postprocess::{self, Activation, Classification, FrameInfo};
use crate::preprocess::{FrameFormat, InputSpec, Preprocessor};
use gst_video::prelude::*;
use std::time::Duration;

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
            pixels: crate::pixel_format(info.format())?,
            matrix: crate::yuv_matrix(info),
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
    BelowThreshold(gst::ClockTime),
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
        let output = reply.result.and_then(|time| {
            classification(
                &mut reply.buffers.logits,
                self.reading,
                self.top_k,
                reply.frame,
                time,
            )
        });
        self.model.recycle(reply.buffers);
        Some(output)
    }

    fn discard_queued(&self) {
        self.model.discard_pending();
    }
}

/// The outputs read as `reading` says, top-k, into a result for `frame`.
pub fn classification(
    logits: &mut [f32],
    reading: &Reading,
    top_k: usize,
    frame: FrameInfo,
    time: Duration,
) -> Output {
    let top_k = postprocess::classify(
        logits,
        top_k,
        &reading.labels,
        reading.output,
        reading.threshold,
    )
    .ok_or_else(|| "Model returned no classes".to_string())?;
    let time = gst::ClockTime::try_from(time).unwrap_or(gst::ClockTime::ZERO);
    Ok(match Classification::new(top_k, frame, time) {
        Some(c) => Inferred::Classified(c),
        None => Inferred::BelowThreshold(time),
    })
}

/// Fills `input` with the model's input for the frame in `buffer`.
pub fn prepare(
    format: Option<&Format>,
    buffer: &gst::BufferRef,
    input: &mut [f32],
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
    // At most three planes (I420, YV12); on the stack, nothing allocated per frame.
    let mut planes: [&[u8]; 3] = [&[]; 3];
    let mut strides = [0usize; 3];
    let n = (frame.n_planes() as usize).min(3);
    for (i, (plane, stride)) in planes.iter_mut().zip(&mut strides).take(n).enumerate() {
        *plane = frame
            .plane_data(i as u32)
            .map_err(|e| bad(format!("plane {i}: {e}")))?;
        *stride = usize::try_from(frame.plane_stride()[i])
            .map_err(|_| bad(format!("plane {i}: negative stride")))?;
    }
    format
        .preprocessor
        .run(&planes[..n], &strides[..n], input)
        .map_err(|e| bad(e.to_string()))
}

pub fn frame_info(
    buffer: &gst::BufferRef,
    number: u64,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
) -> FrameInfo {
    let pts = buffer.pts();
    FrameInfo {
        number,
        timestamp: pts,
        stream_time: segment.and_then(|s| s.to_stream_time(pts?)),
        running_time: segment.and_then(|s| s.to_running_time(pts?)),
        duration: buffer.duration(),
    }
}
