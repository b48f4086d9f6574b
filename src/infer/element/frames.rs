//! The end of a frame's way in an inference element: frames the scheduler let out become published
//! buffers (meta, messages, JSON lines, stats) and the processing latency is kept up to date;
//! errors are posted with no lock held.

use super::*;
use crate::infer::stream::Outs;
use torchcore::scheduler::Outcome;

impl<T: Task> Inference<T> {
    /// Frames the scheduler let out, as `publish` takes them; a failed result ends the list (the
    /// frames after it are not let out). The frame that arrived at `current`, if it waited for
    /// its own result, measures the processing latency.
    pub(super) fn finish(
        &self,
        outs: Outs<T>,
        (width, height): (u32, u32),
        current: Option<Instant>,
        mut failure: Option<Failure>,
    ) -> Finished<T> {
        let mut latency_grew = false;
        let mut buffers = Vec::with_capacity(outs.len());
        for out in outs {
            let (mut inferred, mut late) = (None, false);
            match out.outcome {
                Outcome::Fresh(Ok(i)) => inferred = Some(i),
                Outcome::Fresh(Err(e)) => {
                    failure.get_or_insert(Failure {
                        flow: gst::FlowError::Error,
                        message: gst::error_msg!(gst::LibraryError::Failed, ("{}", e)),
                    });
                    break; // frames after a failed one are not let out
                }
                Outcome::Late => late = true,
                Outcome::Carry | Outcome::Submitted | Outcome::Lost => {}
            }
            let waited = inferred.is_some();
            if let Some(arrived) = current.filter(|&at| waited && out.arrived == at) {
                // A frame that waited for its own result: the processing latency.
                let spent = clock_time(arrived.elapsed());
                let mut latency = lock(&self.latency);
                if spent > *latency {
                    *latency = spent * 5 / 4;
                    latency_grew = true;
                }
            }
            buffers.push((
                out.item,
                publish::Frame {
                    inferred,
                    late,
                    arrived: out.arrived,
                    width,
                    height,
                },
            ));
        }
        Finished {
            buffers,
            failure,
            latency_grew,
        }
    }

    /// Publishes finished frames and posts what went wrong, with no lock held: the buffers to
    /// push, in order, and the flow error to return after them.
    pub(super) fn publish(
        &self,
        element: &Element,
        finished: Finished<T>,
    ) -> (Vec<gst::Buffer>, Option<gst::FlowError>) {
        let (post_messages, stats_interval) = {
            let s = self.settings();
            (
                s.post_messages,
                Duration::from_millis(s.stats_interval.into()),
            )
        };
        let mut out = Vec::with_capacity(finished.buffers.len());
        for (mut buffer, frame) in finished.buffers {
            if let Some(time) = frame.inferred.as_ref().and_then(T::time) {
                gst::trace!(
                    self.cat,
                    obj = element,
                    "{:?}: {} us",
                    buffer.pts(),
                    time.as_micros()
                );
            }
            self.publisher.frame(
                element.upcast_ref(),
                buffer.make_mut(),
                frame,
                post_messages,
                stats_interval,
            );
            out.push(buffer);
        }
        if finished.latency_grew {
            gst::debug!(
                self.cat,
                obj = element,
                "Processing latency grew, asking for a new one"
            );
            let _ = element.post_message(gst::message::Latency::builder().src(element).build());
        }
        let flow = finished.failure.map(|f| {
            if f.flow != gst::FlowError::Flushing {
                element.post_error_message(f.message);
            }
            f.flow
        });
        (out, flow)
    }
}
