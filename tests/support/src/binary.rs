//! The built `chatgate` binary, serving with a config file.

use crate::{eventually, fresh_database_url, http};
use std::net::TcpListener;
use std::time::Duration;

/// The real binary serving with a config file, on a free port.
pub struct Served {
    pub child: std::process::Child,
    pub base: String,
    pub config: std::path::PathBuf,
    pub db_url: String,
    pub dir: tempfile::TempDir,
}

/// Writes `chatgate.yaml` (listen, workers and database added) and starts
/// `chatgate serve`; returns once `/healthz` answers.
pub async fn serve_binary(yaml: &str, env: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db_url = fresh_database_url(dir.path());
    let config = dir.path().join("chatgate.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:{port}\nworkers: 1\ndatabase:\n  url: {db_url}\n{yaml}"),
    )
    .unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("chatgate"))
        .args(["-c", config.to_str().unwrap(), "serve"])
        .env_remove("OPENAI_API_KEY")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(30), || async {
        http().get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    assert!(up, "the server did not start");
    Served {
        child,
        base,
        config,
        db_url,
        dir,
    }
}

impl Served {
    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (bounded) for the process to exit; its success.
    pub async fn exit(&mut self) -> bool {
        let exited = eventually(Duration::from_secs(20), || {
            let done = self.child.try_wait().unwrap();
            async move { done.is_some() }
        })
        .await;
        assert!(exited, "the server did not exit");
        let status = self.child.wait().unwrap();
        if !status.success() {
            // What the server said last is the diagnosis.
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("the server exited with {status}; its log ends:");
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
        status.success()
    }
}

/// A test that fails leaves no server behind.
impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The YAML for one OpenAI upstream at `url` with `key`, and a user.
pub fn upstream_yaml(url: &str, key: &str) -> String {
    format!(
        "upstreams:\n  - name: mock\n    kind: openai\n    base_url: {url}\n    api_keys: [{key}]\n\
         users:\n  - name: alice\n    token: sk-alice-test-key\n"
    )
}
