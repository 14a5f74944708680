//! A real `redis-server` (Debian's) for a test, on a free loopback port, killed when dropped.
//! Tests that need it fail, not skip, when it is not installed.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server process of this test, killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// For a persistent server: its data directory (AOF), removed when dropped.
    dir: Option<PathBuf>,
}

impl RedisServer {
    /// An in-memory server: no snapshots, no append-only file.
    pub fn start() -> RedisServer {
        let mut server = RedisServer { child: None, port: free_port(), dir: None };
        server.spawn();
        server
    }

    /// A server that writes every change to its append-only file before answering, so a killed
    /// server comes back with everything it acknowledged.
    pub fn start_persistent() -> RedisServer {
        let dir = std::env::temp_dir().join(format!("mcp-auth-redis-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("redis data dir");
        let mut server = RedisServer { child: None, port: free_port(), dir: Some(dir) };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        let dir;
        match &self.dir {
            Some(path) => {
                dir = path.display().to_string();
                args.extend(["--appendonly", "yes", "--appendfsync", "always", "--dir", &dir]);
            }
            None => args.extend(["--appendonly", "no"]),
        }
        let child = Command::new("redis-server").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("redis-server is not installed; these tests need it: apt-get install -y redis-server")
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        }
        self.wait_ready();
    }

    /// Polls until the server answers PING (it may be loading its append-only file).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING within 10 s", self.port);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}
