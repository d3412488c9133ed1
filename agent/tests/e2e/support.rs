//! Test support: a real `flowscope` agent process on a temp socket and a free HTTP port, an SDK
//! client pointed at it, raw protocol connections, and JSON assertions.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// A running agent process, killed on drop.
pub struct Agent {
    child: Child,
    pub socket: PathBuf,
    pub base: String,
    _dir: Option<tempfile::TempDir>,
}

impl Agent {
    /// Starts an agent with extra flags on a fresh temp socket.
    pub fn start(extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("flowscope.sock");
        let mut agent = Agent::start_at(&socket, extra);
        agent._dir = Some(dir);
        agent
    }

    /// Starts an agent on a given socket path.
    pub fn start_at(socket: &Path, extra: &[&str]) -> Agent {
        Agent::try_start_at(socket, extra).unwrap_or_else(|e| panic!("agent did not start: {e}"))
    }

    /// Starts an agent, or returns its stderr when it exits instead.
    pub fn try_start_at(socket: &Path, extra: &[&str]) -> Result<Agent, String> {
        Agent::try_start_with_env(socket, extra, &[])
    }

    /// Starts an agent that is expected to refuse to start; returns its stderr.
    pub fn refused(socket: &Path, extra: &[&str]) -> String {
        match Agent::try_start_at(socket, extra) {
            Ok(_) => panic!("the agent started with {extra:?}"),
            Err(stderr) => stderr,
        }
    }

    /// Starts an agent with extra environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("flowscope.sock");
        let mut agent = Agent::try_start_with_env(&socket, extra, env)
            .unwrap_or_else(|e| panic!("agent did not start: {e}"));
        agent._dir = Some(dir);
        agent
    }

    fn try_start_with_env(
        socket: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Agent, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowscope"))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .envs(env.iter().copied())
            .arg("--socket")
            .arg(socket)
            .args(if extra.contains(&"--http") {
                &["--log", "warn"][..]
            } else {
                &["--http", "127.0.0.1:0", "--log", "warn"][..]
            })
            // Tests that want the OTLP/gRPC receiver or a data directory ask for them; the
            // default port and the user's state directory are not theirs.
            .args(if extra.contains(&"--otlp-grpc-listen") {
                &[][..]
            } else {
                &["--otlp-grpc-listen", "off"][..]
            })
            .args(if extra.contains(&"--data-dir") {
                &[][..]
            } else {
                &["--data-dir", "none"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn flowscope");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("read stdout");
        let Some(http) = line.split("http=").nth(1) else {
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            let _ = child.wait();
            return Err(err);
        };
        let base = http.trim().to_owned();
        // Keep draining stdout so the agent never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Ok(Agent {
            child,
            socket: socket.to_owned(),
            base,
            _dir: None,
        })
    }

    /// GET a path; returns status and JSON body.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::blocking::get(format!("{}{}", self.base, path)).expect("http get");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// GET a path that must answer 200.
    pub fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path} answered {status}: {body}");
        body
    }

    /// Polls `path` until `ready` holds (5 s at most), returning the last body.
    #[track_caller]
    pub fn wait_for(&self, path: &str, ready: impl Fn(u16, &Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = self.get(path);
            if ready(status, &body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {path}; last: {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a trace exists and satisfies `ready`.
    #[track_caller]
    pub fn wait_trace(&self, id: impl std::fmt::Display, ready: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(&format!("/api/traces/{id}"), |s, b| s == 200 && ready(b))
    }

    /// An SDK client pointed at this agent.
    pub fn client(&self) -> flowscope::Client {
        flowscope::Client::new(flowscope::Config::new("e2e-tests").socket(&self.socket))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the agent process, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("agent /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The `host:port` of the HTTP server.
    pub fn http_addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Stops the process with SIGTERM (a clean shutdown) and waits for it.
    pub fn terminate(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A raw protocol connection for feeding hand-made bytes.
pub struct RawConn {
    pub stream: UnixStream,
}

impl RawConn {
    /// Connects without a handshake.
    pub fn connect(agent: &Agent) -> RawConn {
        let stream = UnixStream::connect(&agent.socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        RawConn { stream }
    }

    /// Connects and completes a handshake with `encoding`.
    pub fn handshake(agent: &Agent, encoding: &str) -> RawConn {
        let mut conn = RawConn::connect(agent);
        conn.send_frame(
            format!(r#"{{"v":1,"encoding":"{encoding}","sdk":"raw/1","service":"raw"}}"#)
                .as_bytes(),
        );
        let reply = conn.read_frame().expect("handshake reply");
        assert_eq!(reply["ok"], true, "handshake refused: {reply}");
        conn
    }

    /// Sends a JSON array of events as one batch frame.
    pub fn send_events(&mut self, events: &[Value]) {
        self.send_frame(&serde_json::to_vec(events).expect("json"));
    }

    /// Sends a length-prefixed frame.
    pub fn send_frame(&mut self, payload: &[u8]) {
        self.send_raw(&(payload.len() as u32).to_be_bytes());
        self.send_raw(payload);
    }

    /// Sends bytes as they are (ignoring a closed socket).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads one JSON frame from the agent; `None` on EOF.
    pub fn read_frame(&mut self) -> Option<Value> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).ok()?;
        let mut payload = vec![0u8; u32::from_be_bytes(header) as usize];
        self.stream.read_exact(&mut payload).ok()?;
        serde_json::from_slice(&payload).ok()
    }

    /// Whether the agent closed the connection (reads EOF).
    pub fn closed_by_agent(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.stream.read(&mut buf), Ok(0) | Err(_))
    }
}

/// A fixed instant: `ms` milliseconds after 2023-12-30T14:10:52Z (the RFC example's start).
pub fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_703_943_052_000 + ms)
}

/// Flushes a client, failing the test when it cannot.
#[track_caller]
pub fn flush(client: &flowscope::Client) {
    assert!(
        client.flush(Duration::from_secs(5)),
        "flush timed out: {:?}",
        client.stats()
    );
}

/// Ids of a `/api/traces` response, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list["traces"]
        .as_array()
        .expect("traces array")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A real OTLP receiver process (`tests/otlp-receiver`), killed on drop.
pub struct Receiver {
    child: Child,
    /// gRPC address.
    pub grpc: String,
    /// HTTP address.
    pub http: String,
}

fn receiver_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("otlp-receiver");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "otlp-receiver"])
            .status()
            .expect("cargo build otlp-receiver");
        assert!(status.success(), "building otlp-receiver failed");
    }
    bin
}

impl Receiver {
    /// Starts a receiver on free ports.
    pub fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0", "127.0.0.1:0")
    }

    /// Starts a receiver on given addresses (to restart one in place).
    pub fn start_on(grpc: &str, http: &str) -> Receiver {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut child = Command::new(receiver_bin())
                .args(["--grpc", grpc, "--http", http])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn otlp-receiver");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let addr = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_owned)
            };
            if let (Some(grpc), Some(http)) = (addr("grpc="), addr("http=")) {
                return Receiver { child, grpc, http };
            }
            // The port may still be held by the previous process for a moment.
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "otlp-receiver did not start on {grpc} {http}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every request received so far (OTLP/JSON), with transport and authorization header.
    pub fn requests(&self) -> Vec<Value> {
        let body: Value = reqwest::blocking::get(format!("http://{}/received", self.http))
            .unwrap()
            .json()
            .unwrap();
        body["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Every span received so far, each with its resource attributes under `"resource"`.
    pub fn spans(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for request in self.requests() {
            for resource_spans in request["request"]["resourceSpans"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for scope in resource_spans["scopeSpans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["resource"] = resource_spans["resource"]["attributes"].clone();
                        span["scope"] = scope["scope"]["name"].clone();
                        out.push(span);
                    }
                }
            }
        }
        out
    }

    /// Polls until `ready` holds over the received spans (10 s at most).
    #[track_caller]
    pub fn wait_spans(&self, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.spans();
            if ready(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; {} spans received",
                spans.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An OTLP attribute's value (`stringValue`, `intValue` as number, `boolValue`, `doubleValue`).
pub fn otlp_attr(attributes: &Value, key: &str) -> Option<Value> {
    let kv = attributes.as_array()?.iter().find(|kv| kv["key"] == key)?;
    let value = &kv["value"];
    for typed in ["stringValue", "boolValue", "doubleValue"] {
        if !value[typed].is_null() {
            return Some(value[typed].clone());
        }
    }
    value["intValue"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .map(Value::from)
}
