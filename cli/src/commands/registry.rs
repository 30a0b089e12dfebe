//! `floe registry`: the embedded Schema Registry as a process of its own, for tests whose
//! records are produced by real registry clients, and for local experiments.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Result;
use floe_devtools::registry::{RegistryServer, ServerOptions};

/// Starts the registry, prints `url=http://HOST:PORT`, and runs until standard input
/// closes. The lines `down` and `up` take it down (its port refuses connections) and
/// bring it back on the same port with the same schemas; each is answered with the same
/// word once done.
pub fn registry(
    listen: Option<String>,
    user_info: Option<String>,
    state_file: Option<PathBuf>,
) -> Result<()> {
    let server = RegistryServer::start(ServerOptions {
        listen,
        user_info,
        state_file,
    })?;
    println!("url={}", server.url());
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let command = line.trim();
        match command {
            "down" | "up" => {
                server.set_up(command == "up");
                println!("{command}");
                let _ = std::io::stdout().flush();
            }
            "" => {}
            other => eprintln!("floe registry: unknown command '{other}' (down, up)"),
        }
    }
    Ok(())
}
