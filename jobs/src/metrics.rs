//! Counters of the job system, registered into the server's Prometheus registry.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct JobMetrics {
    claims: IntCounter,
    runs: IntCounterVec,
    rows: IntCounter,
    bytes: IntCounter,
    batches: IntCounter,
}

impl JobMetrics {
    pub fn new(registry: &Registry) -> Self {
        let claims = IntCounter::new(
            "command_run_claims_total",
            "Runs this process claimed to work on (a run retried later is claimed again)",
        )
        .expect("valid metric");
        let runs = IntCounterVec::new(
            Opts::new("command_runs_total", "Finished command runs by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let rows = IntCounter::new(
            "command_rows_delivered_total",
            "Rows delivered by command runs",
        )
        .expect("valid metric");
        let bytes = IntCounter::new(
            "command_bytes_delivered_total",
            "JSON bytes delivered by command runs",
        )
        .expect("valid metric");
        let batches = IntCounter::new(
            "command_batches_delivered_total",
            "Batches delivered by command runs",
        )
        .expect("valid metric");
        for metric in [
            Box::new(claims.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(runs.clone()),
            Box::new(rows.clone()),
            Box::new(bytes.clone()),
            Box::new(batches.clone()),
        ] {
            // A second registration (tests build several apps) is harmless.
            let _ = registry.register(metric);
        }
        Self {
            claims,
            runs,
            rows,
            bytes,
            batches,
        }
    }

    pub fn run_claimed(&self) {
        self.claims.inc();
    }

    pub fn run_finished(&self, succeeded: bool) {
        self.runs
            .with_label_values(&[if succeeded { "succeeded" } else { "failed" }])
            .inc();
    }

    pub fn batch_delivered(&self, rows: u64, bytes: u64) {
        self.rows.inc_by(rows);
        self.bytes.inc_by(bytes);
        self.batches.inc();
    }
}
