//! `floe registry` in a process of its own for the Avro jobs, stopped on drop.

use std::path::Path;
use std::process::{Child, Command};

use anyhow::Result;

use crate::broker::announced;

/// A running registry.
pub struct Registry {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Registry {
    /// Starts `floe registry` on a free loopback port.
    pub fn start(floe: &Path) -> Result<Registry> {
        let (child, url) = announced(Command::new(floe).arg("registry"), "url=")?;
        Ok(Registry { child, url })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
