//! The model as the scheduler's [`Backend`]: a buffer mapped as the core's [`Frame`] and
//! prepared into the model's input by the task, a job's outputs read by the task for the frame
//! it ran on.

use super::Task;
use gst_video::prelude::*;
use std::time::Duration;
use torchcore::batch;
use torchcore::frame::{Frame, FrameFormat, FrameInfo};
use torchcore::preprocess::{InputSpec, Preprocessor};
use torchcore::scheduler::{Backend, Ticket};

/// A task's model: jobs carry the task's payload.
pub type Model<T> = batch::Model<<T as Task>::Payload>;
/// A task's job buffers.
pub type Buffers<T> = batch::Buffers<<T as Task>::Payload>;
/// What the model thread does with a task's async job's result.
pub type OnResult<T> = batch::OnResult<<T as Task>::Payload>;

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

/// The negotiated frame's width and height (0 x 0 before caps).
pub fn frame_size(format: Option<&Format>) -> (u32, u32) {
    format.map_or((0, 0), |f| (f.info.width(), f.info.height()))
}

/// What a job's output is for a frame: what the model said, or the error that replaced it.
pub type Output<T> = Result<<T as Task>::Inferred, String>;

/// An error found under a lock, to post once it is released.
pub struct Failure {
    pub flow: gst::FlowError,
    pub message: gst::ErrorMessage,
}

/// A prepared input: the model's buffers and the frame they hold.
pub struct Prepared<T: Task> {
    pub buffers: Buffers<T>,
    pub frame: FrameInfo,
}

/// The model, how to read it and the frame's params, as the scheduler's backend.
pub struct Run<'a, T: Task> {
    pub model: &'a Model<T>,
    pub reading: &'a T::Reading,
    pub params: &'a T::Params,
}

impl<T: Task> Backend for Run<'_, T> {
    type Input = Prepared<T>;
    type Output = Output<T>;

    fn input(&self) -> Prepared<T> {
        Prepared {
            buffers: self.model.buffers(),
            frame: FrameInfo::default(),
        }
    }

    fn recycle(&self, input: Prepared<T>) {
        self.model.recycle(input.buffers);
    }

    fn queue(&self, ticket: Ticket, input: Prepared<T>) {
        self.model.queue(ticket, input.buffers, input.frame);
    }

    fn submit(&self, input: Prepared<T>) {
        self.model.submit(input.buffers, input.frame);
    }

    fn wait(&self, ticket: Ticket) -> Option<Output<T>> {
        let mut reply = self.model.wait(ticket)?;
        let output = T::read(
            &mut reply.buffers,
            reply.result,
            self.reading,
            self.params,
            reply.frame,
        );
        self.model.recycle(reply.buffers);
        Some(output)
    }

    fn discard_queued(&self) {
        self.model.discard_pending();
    }
}

/// Fills `buffers` with the model's input for the frame in `buffer`, as the task says (the
/// whole frame, or regions of it).
pub fn prepare<T: Task>(
    format: Option<&mut Format>,
    buffer: &gst::BufferRef,
    number: u64,
    (params, reading): (&T::Params, &T::Reading),
    buffers: &mut Buffers<T>,
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
    let mut planes = Frame::default();
    for i in 0..frame.n_planes().min(Frame::MAX_PLANES as u32) {
        let data = frame
            .plane_data(i)
            .map_err(|e| bad(format!("plane {i}: {e}")))?;
        let stride = usize::try_from(frame.plane_stride()[i as usize])
            .map_err(|_| bad(format!("plane {i}: negative stride")))?;
        planes.push(data, stride);
    }
    let size = (info.width(), info.height());
    let preprocessor = &mut format.preprocessor;
    T::fill(
        params,
        preprocessor,
        &planes,
        buffer,
        size,
        number,
        buffers,
        reading,
    )
    .map_err(bad)
}

/// The whole frame into the first image of `input`, as `preprocessor` fits it.
pub fn fill_whole(
    preprocessor: &Preprocessor,
    frame: &Frame,
    input: &mut [f32],
) -> Result<(), String> {
    let (len, have) = (preprocessor.output_len(), input.len());
    let input = input
        .get_mut(..len)
        .ok_or_else(|| format!("model input of {have} floats"))?;
    preprocessor
        .run(frame.planes(), frame.strides(), input)
        .map_err(|e| e.to_string())
}

/// Which frame `buffer` is: its number, and its times in `segment`.
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
