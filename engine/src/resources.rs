//! What the process has used so far (Linux `/proc`), reported when a job stops so that
//! benchmarks and operators see peak memory and CPU time without extra tools.

/// Peak resident memory and CPU time of this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Peak resident set size in bytes (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
}

/// Kernel clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The usage of this process, where `/proc` is available.
pub fn usage() -> Option<Usage> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Usage {
        peak_rss_bytes: kb * 1024,
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_proc_on_linux() {
        if cfg!(target_os = "linux") {
            let u = super::usage().expect("usage on linux");
            assert!(u.peak_rss_bytes > 1024 * 1024);
        }
    }
}
