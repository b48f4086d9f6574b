//! GStreamer glue of `torchpublish`: properties, start/stop, and per buffer: a result not yet
//! published becomes one JSON message in the queue of the publisher thread (`sender`), so the
//! streaming thread never waits for a file or a broker.
//!
//! Lock order: `settings` → `state`; the queue's own lock (outbox.rs) is innermost. Nothing is
//! posted with a lock held: the publisher thread posts its warnings and stats itself.

use super::outbox::Outbox;
use super::sender::{self, Notice, Output, Sender};
use crate::lock;
use crate::meta;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use torchcore::classify::Classification;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "torchpublish",
        gst::DebugColorFlags::empty(),
        Some("Publishes torchclassify results"),
    )
});

const DEFAULT_LOCATION: &str = "-";
const DEFAULT_ADDRESS: &str = "localhost:1883";
const DEFAULT_TOPIC: &str = "gst-torch/results";
const DEFAULT_MQTT_QOS: u32 = 1;
const DEFAULT_MAX_QUEUE: u32 = 1000;
/// How long EOS waits for the queue to empty while the output is connected.
const EOS_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstTorchPublishMethod")]
pub enum Method {
    #[default]
    #[enum_value(
        name = "JSON lines to a file (property location; - = standard output)",
        nick = "file"
    )]
    File = 0,
    #[enum_value(
        name = "MQTT: publish to a broker (properties address, topic)",
        nick = "mqtt"
    )]
    Mqtt = 1,
}

#[derive(Debug, Clone)]
struct Settings {
    method: Method,
    location: String,
    address: String,
    topic: String,
    client_id: Option<String>,
    mqtt_qos: u32,
    source_id: Option<String>,
    max_queue: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            method: Method::default(),
            location: DEFAULT_LOCATION.into(),
            address: DEFAULT_ADDRESS.into(),
            topic: DEFAULT_TOPIC.into(),
            client_id: None,
            mqtt_qos: DEFAULT_MQTT_QOS,
            source_id: None,
            max_queue: DEFAULT_MAX_QUEUE,
        }
    }
}

struct State {
    outbox: Arc<Outbox>,
    sender: Sender,
    source: String,
    /// The result last queued (frame number and timestamp): buffers carrying the same one (with
    /// `inference-interval` or `async`) publish nothing more.
    last: Option<(u64, Option<Duration>)>,
}

#[derive(Default)]
pub struct TorchPublish {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

/// The `torchpublish-stats` structure of the queue's counters.
fn stats_structure(outbox: Option<&Outbox>) -> gst::Structure {
    let c = outbox.map(Outbox::counts).unwrap_or_default();
    gst::Structure::builder("torchpublish-stats")
        .field("published", c.published)
        .field("dropped", c.dropped)
        .field("failures", c.failures)
        .field("queued", c.queued)
        .field("connected", c.connected)
        .build()
}

impl TorchPublish {
    fn post_stats(&self, outbox: &Outbox) {
        let s = stats_structure(Some(outbox));
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// The JSON message for a result: the `results-file` fields plus `source`.
    fn message(c: &Classification, source: &str) -> Vec<u8> {
        Self::with_source(torchcore::results::to_json(c), source)
    }

    /// The JSON message for a frame's regions (`inference-region=roi-list`): the `results-file`
    /// line with its `objects`, plus `source`. Each region's time is its share of the batch.
    fn regions_message(results: &[(crate::Region, Classification)], source: &str) -> Vec<u8> {
        let Some((_, first)) = results.first() else {
            return Vec::new();
        };
        let time = first.inference_time * results.len() as u32;
        Self::with_source(
            torchcore::results::regions_to_json(&first.frame, results, time),
            source,
        )
    }

    fn with_source(mut v: serde_json::Value, source: &str) -> Vec<u8> {
        if let Some(o) = v.as_object_mut() {
            o.insert("source".into(), source.into());
        }
        v.to_string().into_bytes()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for TorchPublish {
    const NAME: &'static str = "GstTorchPublish";
    type Type = super::TorchPublish;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for TorchPublish {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("method", Method::default())
                    .nick("Method")
                    .blurb("Where results go: a file of JSON lines, or an MQTT broker")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("method=file: the file (created at start); - = standard output")
                    .default_value(Some(DEFAULT_LOCATION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("address")
                    .nick("Broker address")
                    .blurb("method=mqtt: the broker as host:port")
                    .default_value(Some(DEFAULT_ADDRESS))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("topic")
                    .nick("Topic")
                    .blurb("method=mqtt: the topic each result is published to")
                    .default_value(Some(DEFAULT_TOPIC))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("client-id")
                    .nick("Client id")
                    .blurb(
                        "method=mqtt: the MQTT client id (unset: gst-torch-<process id>-<n>-<element \
                         name>, n counting starts in the process: a broker drops the older of two \
                         clients with the same id)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("mqtt-qos")
                    .nick("MQTT QoS")
                    .blurb(
                        "method=mqtt: 0 = at most once, 1 = at least once (messages the \
                         connection lost are sent again after reconnecting)",
                    )
                    .maximum(1)
                    .default_value(DEFAULT_MQTT_QOS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("source-id")
                    .nick("Source id")
                    .blurb(
                        "The `source` field of every message (unset: the element's path in \
                         the pipeline, e.g. /GstPipeline:pipeline0/GstTorchPublish:torchpublish0)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-queue")
                    .nick("Max queue")
                    .blurb(
                        "Messages held while the output is slow or away; when full the oldest \
                         is dropped (counted in stats)",
                    )
                    .minimum(1)
                    .maximum(1_000_000)
                    .default_value(DEFAULT_MAX_QUEUE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "torchpublish-stats: published, dropped (queue full), failures \
                         (connection or write attempts that failed), queued, connected; also \
                         posted as an element message when the connection comes or goes, and \
                         at EOS",
                    )
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let string = |v: &glib::Value| v.get::<Option<String>>().ok().flatten();
        match pspec.name() {
            "method" => s.method = value.get().unwrap_or_default(),
            "location" => s.location = string(value).unwrap_or_else(|| DEFAULT_LOCATION.into()),
            "address" => s.address = string(value).unwrap_or_else(|| DEFAULT_ADDRESS.into()),
            "topic" => s.topic = string(value).unwrap_or_else(|| DEFAULT_TOPIC.into()),
            "client-id" => s.client_id = string(value).filter(|v| !v.is_empty()),
            "mqtt-qos" => s.mqtt_qos = value.get().unwrap_or(DEFAULT_MQTT_QOS),
            "source-id" => s.source_id = string(value).filter(|v| !v.is_empty()),
            "max-queue" => s.max_queue = value.get().unwrap_or(DEFAULT_MAX_QUEUE),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            let outbox = lock(&self.state).as_ref().map(|s| s.outbox.clone());
            return stats_structure(outbox.as_deref()).to_value();
        }
        let s = lock(&self.settings);
        match pspec.name() {
            "method" => s.method.to_value(),
            "location" => s.location.to_value(),
            "address" => s.address.to_value(),
            "topic" => s.topic.to_value(),
            "client-id" => s.client_id.to_value(),
            "mqtt-qos" => s.mqtt_qos.to_value(),
            "source-id" => s.source_id.to_value(),
            "max-queue" => s.max_queue.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for TorchPublish {}

impl ElementImpl for TorchPublish {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "TorchScript results publisher",
                "Filter/Video",
                "Publishes the results torchclassify (or else torchdetect) attached to each \
                 frame as JSON (the results-file fields plus source) to a file or an MQTT \
                 broker, from a thread of its own; video passes through untouched",
                "gst-torch developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(|| crate::video::sink_src_templates(&gst::Caps::new_any()));
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for TorchPublish {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let element_name = self.obj().name();
        let output = match settings.method {
            Method::File => Output::File {
                location: settings.location.clone(),
            },
            Method::Mqtt => {
                let (host, port) = sender::parse_address(&settings.address).map_err(|e| {
                    gst::error_msg!(gst::ResourceError::Settings, ("Property 'address': {}", e))
                })?;
                Output::Mqtt {
                    host,
                    port,
                    topic: settings.topic.clone(),
                    client_id: settings.client_id.clone().unwrap_or_else(|| {
                        // Unique per start: a broker drops the older of two clients with one id.
                        static STARTS: AtomicU64 = AtomicU64::new(0);
                        let n = STARTS.fetch_add(1, Ordering::Relaxed);
                        format!("gst-torch-{}-{n}-{element_name}", std::process::id())
                    }),
                    qos: settings.mqtt_qos as u8,
                }
            }
        };
        let outbox = Arc::new(Outbox::new(settings.max_queue as usize));
        let element = self.obj().downgrade();
        let notice_outbox = outbox.clone();
        let (method, address) = (settings.method, settings.address.clone());
        let sender = Sender::start(output, outbox.clone(), move |notice| {
            let Some(element) = element.upgrade() else {
                return;
            };
            let imp = element.imp();
            match notice {
                Notice::Connected => gst::info!(CAT, imp = imp, "Connected to {address}"),
                Notice::Failed(e) => match method {
                    Method::Mqtt => gst::element_imp_warning!(
                        imp,
                        gst::ResourceError::Write,
                        (
                            "Cannot publish to the MQTT broker at {} (property 'address'): {}; \
                             retrying, results wait in the queue (property 'max-queue')",
                            address,
                            e
                        )
                    ),
                    Method::File => gst::element_imp_warning!(
                        imp,
                        gst::ResourceError::Write,
                        ("Cannot write results (property 'location'): {}", e)
                    ),
                },
            }
            imp.post_stats(&notice_outbox);
        })
        .map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenWrite,
                ("Property 'location': {}", e)
            )
        })?;
        let source = settings
            .source_id
            .unwrap_or_else(|| self.obj().path_string().to_string());
        *lock(&self.state) = Some(State {
            outbox,
            sender,
            source,
            last: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Joined outside the lock: the publisher thread's notices read the state.
        let state = lock(&self.state).take();
        if let Some(state) = state {
            state.sender.stop();
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    state.last = None;
                }
            }
            gst::EventView::Eos(_) => {
                let outbox = lock(&self.state).as_ref().map(|s| s.outbox.clone());
                if let Some(outbox) = outbox {
                    // What was queued goes out (is written, or sent to the broker) before EOS
                    // reaches the application, while the output is there to take it.
                    let deadline = std::time::Instant::now() + EOS_WAIT;
                    let pending = |c: super::outbox::Counts| {
                        c.connected && c.published + c.dropped < c.accepted
                    };
                    while pending(outbox.counts()) && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    self.post_stats(&outbox);
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn transform_ip_passthrough(
        &self,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.queue(buffer)
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.queue(buffer)
    }
}

impl TorchPublish {
    /// Queues the buffer's result if it was not published yet.
    fn queue(&self, buffer: &gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let c = meta::result(buffer);
        // roi-list mode: the regions' results (all from the frame the model ran on).
        let regions = if c.is_none() {
            meta::regions(buffer)
        } else {
            Vec::new()
        };
        // Else torchdetect's boxes (a frame it ran on, boxes or none).
        let detected = if c.is_none() && regions.is_empty() {
            crate::detect::meta::from_buffer(buffer)
        } else {
            None
        };
        let frame = match (&c, regions.first(), &detected) {
            (Some(c), _, _) => c.frame,
            (None, Some((_, c)), _) => c.frame,
            (None, None, Some(d)) => d.frame,
            (None, None, None) => return Ok(gst::FlowSuccess::Ok),
        };
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let key = (frame.number, frame.timestamp);
        if state.last == Some(key) {
            return Ok(gst::FlowSuccess::Ok);
        }
        state.last = Some(key);
        let message = match (&c, &detected) {
            (Some(c), _) => Self::message(c, &state.source),
            (None, Some(d)) => Self::with_source(d.to_json(), &state.source),
            (None, None) => Self::regions_message(&regions, &state.source),
        };
        state.outbox.push(message);
        Ok(gst::FlowSuccess::Ok)
    }
}
