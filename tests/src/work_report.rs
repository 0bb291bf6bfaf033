//! The end of a remote-unit run (`work_sim.rs`): the checks, and the figures.

use std::time::Duration;

use receptor_core::work::{STATE_FAILED, STATE_SUCCEEDED, is_complete};

use crate::work_sim::{B, Fault, World};

/// What a run did, for the checks and the figures.
#[derive(Debug, Clone, Default)]
pub struct UnitsReport {
    /// The seed.
    pub seed: u64,
    /// Units submitted on A.
    pub units: usize,
    /// Units Succeeded on A with C's output byte for byte.
    pub succeeded: usize,
    /// Details of the units Failed on A (none of them had started on C).
    pub failed: Vec<String>,
    /// Units C ran that no unit on A followed (a submit whose start A never learnt, before
    /// it submitted again or failed the unit).
    pub orphans: usize,
    /// Output bytes that arrived on A.
    pub bytes: u64,
    /// Packet loss on A-B and B-C (probabilities).
    pub loss: [f64; 2],
    /// Whether the mesh had the second path A - D - C.
    pub second_path: bool,
    /// Partitions injected.
    pub partitions: usize,
    /// Crashes (each followed by a restart) of B.
    pub crashes_b: usize,
    /// Crashes (each followed by a restart) of A.
    pub crashes_a: usize,
    /// Mesh streams dialled by A's machines.
    pub dials: u64,
    /// Of those, connections that broke (no clean end of stream).
    pub cuts: u64,
    /// Open connections A's machines gave up on (no reply in time, stalled output).
    pub abandoned: u64,
    /// Machines made anew from A's disk and resumed after A restarted.
    pub resumes: u64,
    /// `work results` asked from a later offset than 0 (copies resumed after a break).
    pub resumed_results: u64,
    /// QUIC packets sent.
    pub packets: u64,
    /// Virtual time when every unit was terminal on both sides.
    pub virtual_time: Duration,
    /// Hash of the trace: equal for equal seeds.
    pub trace_hash: u64,
}

impl World {
    /// The end-of-run checks; the figures.
    pub(crate) fn check(&self) -> Result<UnitsReport, String> {
        let mut r = UnitsReport {
            seed: self.seed,
            units: self.units.len(),
            virtual_time: self.sim.now(),
            dials: self.dials,
            cuts: self.cuts,
            abandoned: self.abandoned,
            resumes: self.resumes,
            resumed_results: self.exec.resumed_results,
            loss: self.loss,
            second_path: self.second_path,
            packets: self.sim.stream_stats().sent,
            ..UnitsReport::default()
        };
        let mut followed = Vec::new();
        for u in &self.units {
            if !is_complete(u.state) {
                return Err(format!("{}: state {} on A ({})", u.id, u.state, u.detail));
            }
            r.bytes += u.output.len() as u64;
            if u.state == STATE_FAILED {
                if u.data.remote_started {
                    return Err(format!(
                        "{}: failed after it started there: {}",
                        u.id, u.detail
                    ));
                }
                r.failed.push(u.detail.clone());
                continue;
            }
            let id = &u.data.remote_unit_id;
            let Some(x) = self.exec.units.get(id) else {
                return Err(format!("{}: succeeded as {id:?}, unknown on C", u.id));
            };
            if x.state != STATE_SUCCEEDED {
                return Err(format!(
                    "{}: succeeded here, {} on C ({})",
                    u.id, x.state, x.detail
                ));
            }
            if u.stdout_size != x.output.len() as i64 {
                return Err(format!(
                    "{}: stdout size {} here, {} on C",
                    u.id,
                    u.stdout_size,
                    x.output.len()
                ));
            }
            if x.payload != u.payload {
                return Err(format!("{}: payload on C is not the one submitted", u.id));
            }
            if u.output != x.output || x.output.len() != x.len {
                let at = u.output.iter().zip(&x.output).position(|(a, b)| a != b);
                return Err(format!(
                    "{}: output {} bytes here, {} on C ({} planned), first difference at {at:?}",
                    u.id,
                    u.output.len(),
                    x.output.len(),
                    x.len
                ));
            }
            followed.push(id.clone());
            r.succeeded += 1;
        }
        r.orphans = self
            .exec
            .units
            .iter()
            .filter(|(id, x)| x.state == STATE_SUCCEEDED && !followed.contains(id))
            .count();
        for (_, f) in &self.faults {
            match f {
                Fault::Partition(..) => r.partitions += 1,
                Fault::Crash(n) if *n == B => r.crashes_b += 1,
                Fault::Crash(_) => r.crashes_a += 1,
                _ => {}
            }
        }
        let mut h = self.trace.hash;
        h.u64(self.sim.stream_shape_hash());
        r.trace_hash = h.finish();
        Ok(r)
    }
}
