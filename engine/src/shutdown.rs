//! SIGINT / SIGTERM handling: the first signal asks for a graceful stop (flush, commit,
//! exit 0); a second one exits at once without committing, which is safe because nothing
//! uncommitted is ever treated as done.

use tokio::sync::watch;
use tracing::warn;

/// The job's stop signal, which every run of the job waits on (a job runs again when
/// a writer schema adds columns).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once the first signal has arrived (at once if it already has).
    pub fn requested(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }
}

/// Listens for SIGINT and SIGTERM: the first asks the job to stop ([`Shutdown`]); a
/// second exits the process with 130.
pub fn install() -> std::io::Result<Shutdown> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            count += 1;
            if count == 1 {
                warn!("stopping: committing what has been read (signal again to exit at once)");
                let _ = tx.send(true);
            } else {
                warn!(
                    "second signal: exiting without committing; uncommitted records will be read again"
                );
                std::process::exit(130);
            }
        }
    });
    Ok(Shutdown(rx))
}
