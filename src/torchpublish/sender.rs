//! The publisher thread: takes messages from the [`Outbox`] and writes them to a file (JSON
//! lines) or publishes them to an MQTT broker through `rumqttc`, reconnecting with backoff. It is
//! owned by the element, started at `start()` and joined at `stop()`.

use super::outbox::{Backoff, Outbox};
use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS, RecvTimeoutError};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Where messages go.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// JSON lines to a file, or standard output for `-`.
    File { location: String },
    Mqtt {
        host: String,
        port: u16,
        topic: String,
        client_id: String,
        qos: u8,
    },
}

/// What the thread tells the element (posted by the element's callback, on this thread, with no
/// lock held).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Connected (again): the counters changed.
    Connected,
    /// The output failed (first failure of an outage): the warning's text.
    Failed(String),
}

/// How long `stop` lets the thread send what is still queued.
const DRAIN: Duration = Duration::from_secs(2);
/// How often the thread looks at the queue and the connection.
const TICK: Duration = Duration::from_millis(20);

/// Parses `host:port` (the `address` property).
pub fn parse_address(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("'{address}' is not host:port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("'{port}' in '{address}' is not a port number"))?;
    if host.is_empty() {
        return Err(format!("'{address}' has no host"));
    }
    Ok((host.to_string(), port))
}

/// The publisher thread's handle; dropping it stops and joins the thread.
pub struct Sender {
    outbox: Arc<Outbox>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Sender {
    /// Opens the output (a file that cannot be created is an error here) and starts the thread.
    pub fn start(
        output: Output,
        outbox: Arc<Outbox>,
        notify: impl Fn(Notice) + Send + 'static,
    ) -> Result<Sender, String> {
        let thread_outbox = outbox.clone();
        let body: Box<dyn FnOnce() + Send> = match output {
            Output::File { location } => {
                let sink: Box<dyn Write + Send> = if location == "-" {
                    Box::new(io::stdout())
                } else {
                    Box::new(
                        File::create(&location)
                            .map_err(|e| format!("Cannot create '{location}': {e}"))?,
                    )
                };
                Box::new(move || write_file(BufWriter::new(sink), &thread_outbox, &notify))
            }
            Output::Mqtt {
                host,
                port,
                topic,
                client_id,
                qos,
            } => Box::new(move || {
                publish_mqtt(
                    &host,
                    port,
                    &topic,
                    &client_id,
                    qos,
                    &thread_outbox,
                    &notify,
                )
            }),
        };
        outbox.update(|c| c.connected = false);
        let thread = thread::Builder::new()
            .name("torchpublish".into())
            .spawn(body)
            .map_err(|e| format!("could not start the publisher thread: {e}"))?;
        Ok(Sender {
            outbox,
            thread: Some(thread),
        })
    }

    /// Closes the queue, lets the thread send what is left (at most 2 s) and joins it.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.outbox.close();
        if let Some(t) = self.thread.take()
            && t.thread().id() != thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn write_file(mut out: impl Write, outbox: &Outbox, notify: &dyn Fn(Notice)) {
    outbox.update(|c| c.connected = true);
    let mut failed = false;
    let write = |out: &mut dyn Write, message: &[u8]| -> io::Result<()> {
        out.write_all(message)?;
        out.write_all(b"\n")
    };
    loop {
        match outbox.pop(Duration::from_millis(200)) {
            Some(message) => match write(&mut out, &message) {
                Ok(()) => outbox.update(|c| c.published += 1),
                Err(e) => {
                    outbox.update(|c| c.failures += 1);
                    if !failed {
                        failed = true;
                        notify(Notice::Failed(format!("Cannot write: {e}")));
                    }
                }
            },
            None if outbox.is_closed() => break,
            // Idle: what was written reaches the file.
            None => {
                let _ = out.flush();
            }
        }
    }
    if let Err(e) = out.flush()
        && !failed
    {
        notify(Notice::Failed(format!("Cannot write: {e}")));
    }
}

fn publish_mqtt(
    host: &str,
    port: u16,
    topic: &str,
    client_id: &str,
    qos: u8,
    outbox: &Outbox,
    notify: &dyn Fn(Notice),
) {
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(options, 64);
    let qos = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut connected = false;
    // A warning per outage, not per attempt.
    let mut in_outage = false;
    let mut closing: Option<Instant> = None;
    let mut disconnecting = false;
    loop {
        match connection.recv_timeout(TICK) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                connected = true;
                in_outage = false;
                backoff.reset();
                outbox.update(|c| c.connected = true);
                notify(Notice::Connected);
            }
            Ok(Ok(Event::Outgoing(Outgoing::Publish(_)))) => {
                outbox.update(|c| c.published += 1);
            }
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                connected = false;
                outbox.update(|c| {
                    c.failures += 1;
                    c.connected = false;
                });
                if !in_outage {
                    in_outage = true;
                    notify(Notice::Failed(e.to_string()));
                }
                if closing.is_some() {
                    break; // nothing more will get out
                }
                // The next poll connects again; wait a little longer each time.
                let delay = backoff.next_delay();
                let until = Instant::now() + delay;
                while Instant::now() < until && !outbox.is_closed() {
                    thread::sleep(TICK);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if connected {
            // Hand queued messages to the client; its event loop sends them as it is polled.
            while let Some(message) = outbox.pop(Duration::ZERO) {
                if client
                    .try_publish(topic, qos, false, message.clone())
                    .is_err()
                {
                    outbox.unpop(message); // the client's own queue is full: later
                    break;
                }
            }
        }
        if outbox.is_closed() {
            let started = *closing.get_or_insert_with(Instant::now);
            if !disconnecting
                && (!connected || outbox.counts().queued == 0 || started.elapsed() > DRAIN)
            {
                if !connected {
                    break; // what is still queued cannot get out
                }
                // Goes out after the publishes handed over before it (then the loop ends).
                let _ = client.try_disconnect();
                disconnecting = true;
            }
            if started.elapsed() > DRAIN * 2 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("localhost:1883"),
            Ok(("localhost".into(), 1883))
        );
        assert_eq!(
            parse_address("127.0.0.1:65535"),
            Ok(("127.0.0.1".into(), 65535))
        );
        assert!(
            parse_address("localhost")
                .unwrap_err()
                .contains("host:port")
        );
        assert!(
            parse_address("h:99999")
                .unwrap_err()
                .contains("port number")
        );
        assert!(parse_address(":1883").unwrap_err().contains("no host"));
    }

    #[test]
    fn file_output_writes_every_message_as_a_line() {
        let path = std::env::temp_dir().join(format!("torchpublish-{}.jsonl", std::process::id()));
        let outbox = Arc::new(Outbox::new(16));
        let sender = Sender::start(
            Output::File {
                location: path.to_string_lossy().into_owned(),
            },
            outbox.clone(),
            |_| {},
        )
        .unwrap();
        for i in 0..5 {
            outbox.push(format!("{{\"n\":{i}}}").into_bytes());
        }
        sender.stop();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert_eq!(outbox.counts().published, 5);
        let err = Sender::start(
            Output::File {
                location: "/nonexistent/dir/x.jsonl".into(),
            },
            Arc::new(Outbox::new(1)),
            |_| {},
        )
        .err()
        .unwrap();
        assert!(err.contains("/nonexistent/dir/x.jsonl"), "{err}");
    }
}
