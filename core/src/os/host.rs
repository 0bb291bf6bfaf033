//! Host facts that `status` reports (the `SystemCPUCount` and `SystemMemoryMiB` fields, and
//! the time of this node's own advertisements).

use crate::control::HostInfo;
use crate::wire::{UnixNanos, WorkCommand};

/// This host's facts at wall-clock time `now`, with the node's work types and build version.
pub fn host_info(now: UnixNanos, work_commands: Vec<WorkCommand>, version: String) -> HostInfo {
    HostInfo {
        now,
        // Own advertisements are reported in UTC.
        utc_offset: 0,
        work_commands,
        cpu_count: cpu_count(),
        memory_mib: memory_mib(),
        version,
    }
}

/// Logical CPUs usable by the process (1 if unknown).
pub fn cpu_count() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// Total physical memory in MiB, from /proc/meminfo (0 if unknown).
pub fn memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo").map_or(0, |text| mem_total_mib(&text))
}

/// The `MemTotal:` line of /proc/meminfo, in MiB (0 if missing or malformed).
fn mem_total_mib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total() {
        let text = "MemFree:  100 kB\nMemTotal:       16318412 kB\n";
        assert_eq!(mem_total_mib(text), 15935);
        assert_eq!(mem_total_mib("MemTotal: lots\n"), 0);
        assert_eq!(mem_total_mib(""), 0);
    }

    #[test]
    fn this_host_has_a_cpu() {
        assert!(cpu_count() >= 1);
    }
}
