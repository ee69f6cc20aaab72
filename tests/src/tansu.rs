//! A real Kafka-protocol broker on loopback for the Kafka tests: `tansu` (DESIGN.md §7),
//! which `scripts/test.sh` installs. Killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `tansu` binary: `$TANSU_BIN`, else the one `cargo install` put in `~/.cargo/bin`,
/// else whatever `PATH` finds.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return bin.into();
    }
    let installed = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|home| home.join("bin/tansu"));
    match installed {
        Some(path) if path.exists() => path,
        _ => "tansu".into(),
    }
}

/// A running broker.
pub struct Broker {
    /// `127.0.0.1:PORT`, for `--kafka-brokers`.
    pub addr: String,
    dir: PathBuf,
    child: Child,
}

impl Broker {
    /// Starts a broker on a free loopback port, keeping its data in a SQLite file in `dir`
    /// (made if need be; the data survives a restart).
    pub fn start(dir: &Path) -> Broker {
        std::fs::create_dir_all(dir).expect("the broker's directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = spawn(&addr, dir);
        Broker {
            addr,
            dir: dir.to_path_buf(),
            child,
        }
    }

    /// Kills the broker and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Kills the broker (its clients find it gone until [`Broker::start_again`]).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the stopped broker on its port and data.
    pub fn start_again(&mut self) {
        self.child = spawn(&self.addr, &self.dir);
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(binary())
            .args(["topic", "create", topic, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://{}", self.addr))
            .stdout(Stdio::null())
            .status()
            .expect("run tansu topic create");
        assert!(status.success(), "tansu topic create {topic}: {status}");
    }
}

impl Broker {
    /// Publishes `payloads` to `topic` as they are (for messages no Infersight sink would
    /// write), and waits for the broker's acknowledgement.
    pub fn produce_raw(&self, topic: &str, payloads: &[&[u8]]) {
        self.produce_keyed(topic, None, payloads);
    }

    /// [`Broker::produce_raw`] with every message keyed `key`.
    pub fn produce_keyed(&self, topic: &str, key: Option<&[u8]>, payloads: &[&[u8]]) {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            // Room for a test's oversized message (librdkafka's default is 1 MB).
            .set("message.max.bytes", "8000000")
            .create()
            .expect("a producer");
        for p in payloads {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(p);
            if let Some(key) = key {
                record = record.key(key);
            }
            producer.send(record).map_err(|(e, _)| e).expect("queued");
        }
        producer
            .flush(Duration::from_secs(30))
            .expect("the broker took them");
    }
}

/// A message read back from a topic: its key, payload and headers (name, value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadMessage {
    /// Its key, if it had one.
    pub key: Option<Vec<u8>>,
    /// Its payload (empty for none).
    pub payload: Vec<u8>,
    /// Its headers in order.
    pub headers: Vec<(String, String)>,
}

impl ReadMessage {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Broker {
    /// Reads partition 0 of `topic` from its start until `count` messages came (or
    /// `within` passed), outside any consumer group.
    pub fn read_partition(&self, topic: &str, count: usize, within: Duration) -> Vec<ReadMessage> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::{Headers, Message};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("group.id", "infersight-tests-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
            .expect("partition 0");
        consumer.assign(&list).expect("assigned");
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < count && Instant::now() < deadline {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (h.key.to_string(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(ReadMessage {
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                headers,
            });
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker's log: appended to `dir/tansu.log`, to look into after a failure.
fn log_file(dir: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

fn spawn(addr: &str, dir: &Path) -> Child {
    let url = format!("tcp://{addr}");
    // tansu reads `sqlite://NAME` as a file relative to its working directory.
    let child = Command::new(binary())
        .current_dir(dir)
        .env("RUST_LOG", std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()))
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(log_file(dir))
        .stderr(log_file(dir))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start tansu ({}): {e}; scripts/test.sh installs it (cargo install tansu --features dynostore,libsql)",
                binary().display()
            )
        });
    // Ready when it accepts connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}
