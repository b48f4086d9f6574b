//! torchpublish with real data and a real broker: the demo clip's results as JSON lines in a
//! file, two pipelines publishing to one MQTT topic of a `mosquitto` started on a free loopback
//! port, and a broker that goes away and comes back mid-stream.

use gst::prelude::*;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{CAT, ESPRESSO, ORANGE, json_lines, media, model, serial};

fn scratch(name: &str) -> PathBuf {
    common::scratch("publish", name)
}

/// Runs a pipeline to EOS (panics on an error or after 60 s); returns the warnings' texts and
/// the last `torchpublish-stats`.
fn run(description: &str) -> (Vec<String>, Option<gst::Structure>) {
    let pipeline = gst::parse::launch(description).unwrap_or_else(|e| panic!("{description}: {e}"));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let (mut warnings, mut stats) = (vec![], None);
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Error(e) => panic!("{description}: {} ({:?})", e.error(), e.debug()),
            gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "torchpublish-stats") {
                    stats = Some(s.to_owned());
                }
            }
            gst::MessageView::Eos(_) => {
                pipeline.set_state(gst::State::Null).unwrap();
                return (warnings, stats);
            }
            _ => {}
        }
    }
    panic!("{description}: no EOS within 60 s");
}

/// The clip through torchclassify and torchpublish with `props`.
fn clip_pipeline(props: &str) -> String {
    format!(
        "filesrc location={} ! decodebin ! videoconvert ! torchclassify model={} ! \
         torchpublish name=p {props} ! fakesink",
        media("cat-coffee-orange.webm"),
        model()
    )
}

/// The clip's 30 results, in frame order: cat, espresso, orange.
fn assert_clip_results(messages: &[serde_json::Value], source: &str) {
    let mut mine: Vec<&serde_json::Value> =
        messages.iter().filter(|m| m["source"] == source).collect();
    mine.sort_by_key(|m| m["frame"].as_u64());
    assert_eq!(mine.len(), 30, "{source}: one message per result");
    for (i, m) in mine.iter().enumerate() {
        assert_eq!(m["frame"].as_u64(), Some(i as u64), "{source}: {m}");
        let id = m["class-id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .unwrap();
        let ok = match i / 10 {
            0 => CAT.contains(&id),
            1 => id == ESPRESSO,
            _ => id == ORANGE,
        };
        assert!(ok, "{source} frame {i}: {m}");
        assert!(m["top-k"].as_array().is_some_and(|t| !t.is_empty()), "{m}");
        assert!(m["pts"].is_u64() && m["confidence"].is_f64(), "{m}");
    }
}

#[test]
fn file_method_writes_one_line_per_result_with_its_source() {
    let _s = serial();
    let path = scratch("clip.jsonl");
    let (warnings, stats) = run(&clip_pipeline(&format!(
        "method=file location={} source-id=cam1",
        path.display()
    )));
    assert!(warnings.is_empty(), "{warnings:?}");
    let messages = json_lines(&path);
    assert_clip_results(&messages, "cam1");
    let stats = stats.expect("torchpublish-stats at EOS");
    assert_eq!(stats.get::<u64>("published").unwrap(), 30);
    assert_eq!(stats.get::<u64>("dropped").unwrap(), 0);
    // Without source-id: the element's path in the pipeline.
    run(&clip_pipeline(&format!("location={}", path.display())));
    let first = &json_lines(&path)[0];
    let source = first["source"].as_str().unwrap();
    assert!(
        source.starts_with('/') && source.ends_with(":p"),
        "{source}"
    );
}

#[test]
fn bad_address_and_location_are_errors_naming_the_property() {
    let _s = serial();
    for (props, expected) in [
        ("method=mqtt address=nohost", "Property 'address'"),
        ("method=mqtt address=localhost:99999", "not a port number"),
        (
            "location=/nonexistent/dir/out.jsonl",
            "/nonexistent/dir/out.jsonl",
        ),
    ] {
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers=1 ! torchpublish {props} ! fakesink"
        ))
        .unwrap();
        let _ = pipeline.set_state(gst::State::Playing);
        let msg = pipeline
            .bus()
            .unwrap()
            .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
            .unwrap_or_else(|| panic!("{props}: no error"));
        pipeline.set_state(gst::State::Null).unwrap();
        let gst::MessageView::Error(e) = msg.view() else {
            unreachable!()
        };
        let text = e.error().to_string();
        assert!(text.contains(expected), "{props}: {text}");
    }
}

/// A `mosquitto` on a loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    fn start(port: Option<u16>) -> Broker {
        let port = port.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let conf = scratch(&format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        // Debian installs it in /usr/sbin, which a user's PATH may lack.
        let program = ["/usr/sbin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto (package mosquitto, installed by tools/setup.sh deps)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, port }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Subscribes to `topic` (again after every reconnect) and collects the JSON messages.
struct Subscriber {
    messages: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    fn start(port: u16, topic: &str) -> Subscriber {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, topic) = (messages.clone(), stop.clone(), topic.to_string());
        let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let options = MqttOptions::new(format!("test-sub-{port}"), "127.0.0.1", port);
            let (client, mut connection) = Client::new(options, 16);
            while !s.load(Ordering::Relaxed) {
                match connection.recv_timeout(Duration::from_millis(50)) {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        client.subscribe(&topic, QoS::AtLeastOnce).unwrap();
                    }
                    Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                        m.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&p.payload).unwrap());
                    }
                    Ok(Err(_)) => std::thread::sleep(Duration::from_millis(100)),
                    _ => {}
                }
            }
        });
        subscribed
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed");
        Subscriber {
            messages,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `n` messages came (at most 30 s); all of them.
    fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.messages.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.messages.lock().unwrap().clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn two_pipelines_publish_every_result_to_one_topic() {
    let _s = serial();
    let broker = Broker::start(None);
    let subscriber = Subscriber::start(broker.port, "cameras/results");
    let runs: Vec<_> = ["cam-a", "cam-b"]
        .into_iter()
        .map(|source| {
            let description = clip_pipeline(&format!(
                "method=mqtt address=127.0.0.1:{} topic=cameras/results source-id={source}",
                broker.port
            ));
            std::thread::spawn(move || run(&description))
        })
        .collect();
    for r in runs {
        let (warnings, stats) = r.join().unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let stats = stats.expect("torchpublish-stats");
        assert_eq!(stats.get::<u64>("published").unwrap(), 30, "{stats}");
    }
    let messages = subscriber.wait_for(60);
    assert_eq!(messages.len(), 60);
    assert_clip_results(&messages, "cam-a");
    assert_clip_results(&messages, "cam-b");
}

#[test]
fn publishing_resumes_after_the_broker_restarts_and_the_pipeline_never_stops() {
    let _s = serial();
    let mut broker = Broker::start(None);
    let port = broker.port;
    let subscriber = Subscriber::start(port, "live/results");
    let description = format!(
        "videotestsrc is-live=true num-buffers=200 ! \
         video/x-raw,width=160,height=120,framerate=20/1 ! torchclassify model={} ! \
         torchpublish name=p method=mqtt address=127.0.0.1:{port} topic=live/results \
         source-id=live ! fakesink sync=true",
        model()
    );
    let run = std::thread::spawn(move || run(&description));
    // Some results through the first broker, then it goes away for a second.
    let before = subscriber.wait_for(10).len();
    assert!(before >= 10, "{before} messages before the restart");
    drop(broker);
    std::thread::sleep(Duration::from_secs(1));
    let restarted_at = subscriber.messages.lock().unwrap().len();
    broker = Broker::start(Some(port));
    let (warnings, stats) = run.join().expect("the pipeline ran to EOS");
    let stats = stats.expect("torchpublish-stats");
    assert!(stats.get::<u64>("failures").unwrap() >= 1, "{stats}");
    assert!(
        stats.get::<bool>("connected").unwrap(),
        "reconnected: {stats}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("MQTT broker at 127.0.0.1:{port}"))),
        "{warnings:?}"
    );
    let after = subscriber.wait_for(restarted_at + 10);
    let frames: Vec<u64> = after.iter().filter_map(|m| m["frame"].as_u64()).collect();
    assert!(
        after.len() >= restarted_at + 10,
        "publishing resumed: {} messages, {restarted_at} before the restart",
        after.len()
    );
    assert!(
        frames.iter().any(|&f| f >= 150),
        "late frames arrived: {frames:?}"
    );
    drop(broker);
}
