//! Says so when a catalog call hangs: a connection pool waiting for a server that is
//! down, or a store that is slow, would otherwise stall the job without a word.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::warn;

/// When the first notice is given.
const FIRST_NOTICE: Duration = Duration::from_secs(2);
/// How often it is repeated while the call goes on.
const REPEAT: Duration = Duration::from_secs(10);

/// Awaits `call`, logging a warning naming `what` and `table` while it takes long.
pub async fn noting_waits<F: Future>(what: &str, table: &str, call: F) -> F::Output {
    noting_waits_after(FIRST_NOTICE, REPEAT, what, table, call).await
}

async fn noting_waits_after<F: Future>(
    first: Duration,
    repeat: Duration,
    what: &str,
    table: &str,
    call: F,
) -> F::Output {
    let started = Instant::now();
    tokio::pin!(call);
    let mut next = first;
    loop {
        tokio::select! {
            out = &mut call => return out,
            _ = tokio::time::sleep(next) => {
                warn!(
                    table,
                    waited_s = started.elapsed().as_secs(),
                    "{what} is waiting for the catalog or the object store"
                );
                next = repeat;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_what_the_call_returns_however_long_it_takes() {
        let ms = Duration::from_millis;
        let slow = async {
            tokio::time::sleep(ms(60)).await;
            7
        };
        // Notices at 10, 20, 30 … ms do not cut the call short.
        assert_eq!(
            noting_waits_after(ms(10), ms(10), "the commit", "t", slow).await,
            7
        );
        assert_eq!(noting_waits("the commit", "t", async { 8 }).await, 8);
    }
}
