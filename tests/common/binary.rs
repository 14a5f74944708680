//! The real server binary (`CARGO_BIN_EXE_mcp-auth-server`) as a child process on a free port,
//! configured like a deployment: the test keys and address as the base layer, the test's own
//! settings as a profile on top.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::auth_settings;

/// The server binary, run with a test profile. Killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    _config: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Server {
    /// Starts the binary with `overrides` (TOML) on top of the test keys and a free port; its
    /// stdout is discarded, its stderr kept for [`Server::stop`]. Logging is at `warn` unless the
    /// overrides say otherwise.
    pub fn start(overrides: &str) -> Server {
        Self::spawn(overrides, Stdio::null())
    }

    /// Like [`Server::start`], with every line the server writes to stdout sent to the receiver
    /// as soon as it is written.
    pub fn start_reading_stdout(overrides: &str) -> (Server, mpsc::Receiver<String>) {
        let mut server = Self::spawn(overrides, Stdio::piped());
        let stdout = server.child.stdout.take().expect("stdout is piped");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        (server, received)
    }

    fn spawn(overrides: &str, stdout: Stdio) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("mcp-auth-binary-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Two layers, as a deployment has them: the base (keys, address) and the test's own.
        let base = format!(
            "{}\n[log]\nfilter = \"warn\"\n[server]\nbind = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nhealth_details = true\n[storage]\nurl = \"memory:\"\n",
            auth_settings()
        );
        std::fs::write(dir.join("default.toml"), base).unwrap();
        std::fs::write(dir.join("test.toml"), overrides).unwrap();
        Self::run_in(tempdir::Dir(dir), port, stdout)
    }

    /// Runs the binary configured by `dir`, which is also its working directory (where the
    /// SQLite default, `data/mcp-auth.db`, goes), until it listens on `port`.
    fn run_in(dir: tempdir::Dir, port: u16, stdout: Stdio) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-auth-server"))
            .current_dir(&dir.0)
            .env("MCP_AUTH_CONFIG_DIR", &dir.0)
            .env("MCP_AUTH_PROFILE", "test")
            .env_remove("RUST_LOG")
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let server = Server { child, port, _config: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops the server (SIGTERM, a graceful shutdown), waits for it to exit and returns what it
    /// wrote to stderr.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        stderr
    }

    /// Kills the server outright (SIGKILL: no shutdown, nothing flushed) and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server outright, then starts it again as it was: same settings, same working
    /// directory, same port (so the same public URL).
    pub fn kill_and_restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self._config, tempdir::Dir(std::path::PathBuf::new()));
        Self::run_in(dir, self.port, Stdio::null())
    }

    /// The server's working directory.
    pub fn dir(&self) -> &std::path::Path {
        &self._config.0
    }

    /// Sends `request` as raw bytes and returns everything the server answers until it closes
    /// the connection (or 10 s pass).
    pub async fn raw(&self, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
        String::from_utf8_lossy(&response).into_owned()
    }
}

impl Drop for Server {
    /// A failed test must not leave the server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
