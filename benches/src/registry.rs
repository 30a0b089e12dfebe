//! `floe registry` in a process of its own for the Avro jobs, stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// A running registry.
pub struct Registry {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Registry {
    /// Starts `floe registry` on a free loopback port.
    pub fn start(floe: &Path) -> Result<Registry> {
        let mut child = Command::new(floe)
            .arg("registry")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting floe registry")?;
        let stdout = child.stdout.take().context("registry stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("url=")
            .with_context(|| format!("unexpected registry output: {line}"))?
            .to_string();
        Ok(Registry { child, url })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
