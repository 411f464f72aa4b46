//! Training history: per-epoch train cost and validation metrics (and optionally every
//! minibatch's cost), written as JSON or CSV and read back for plotting (`xenon plot`).
//!
//! JSON: `{"epochs": [{"epoch": 0, "train_cost": 2.29, "metrics": {"misclassification":
//! 0.106}, "batches": 63, "seconds": 0.05, "batch_costs": [...]}, ...]}`. CSV: a header
//! `epoch,train_cost,batches,seconds,<metric>...` and one row per epoch (no batch costs).
//! The format follows the file's extension (`.csv`, else JSON). Files are written
//! atomically.

use crate::model::{EpochStats, ModelError, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One epoch of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch's index (0 for the first epoch ever trained).
    pub epoch: usize,
    /// Mean of the minibatch costs.
    pub train_cost: f64,
    /// Validation metrics by name (fractions, e.g. `misclassification`).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Minibatches run.
    pub batches: usize,
    /// Wall-clock seconds of training (evaluation excluded).
    pub seconds: f64,
    /// Every minibatch's cost, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_costs: Option<Vec<f64>>,
}

impl EpochRecord {
    /// The record of an epoch from its statistics and metrics.
    pub fn new(stats: &EpochStats, metrics: &[(String, f64)]) -> EpochRecord {
        EpochRecord {
            epoch: stats.epoch,
            train_cost: stats.train_cost,
            metrics: metrics.iter().cloned().collect(),
            batches: stats.batches,
            seconds: stats.seconds,
            batch_costs: None,
        }
    }
}

/// The epochs of a training run, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
}

fn history_err(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::History {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// A CSV reader's error as a line-numbered message.
fn csv_error(e: &csv::Error) -> String {
    match e.position() {
        Some(p) => format!("line {}: {e}", p.line()),
        None => e.to_string(),
    }
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

impl History {
    /// Adds an epoch, replacing any record of the same or a later epoch (a resumed run
    /// continues the history it was given).
    pub fn push(&mut self, record: EpochRecord) {
        self.epochs.retain(|r| r.epoch < record.epoch);
        self.epochs.push(record);
    }

    /// The metric names, sorted, over every epoch.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .epochs
            .iter()
            .flat_map(|r| r.metrics.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The CSV text: a header, then one row per epoch (an empty field for a metric an
    /// epoch lacks); a metric name holding a comma, a quote or a line break is quoted.
    pub fn to_csv(&self) -> String {
        let names = self.metric_names();
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = ["epoch", "train_cost", "batches", "seconds"]
            .into_iter()
            .map(str::to_string)
            .chain(names.iter().cloned());
        w.write_record(header).expect("writing to memory");
        for r in &self.epochs {
            let fixed = [
                r.epoch.to_string(),
                format!("{:?}", r.train_cost),
                r.batches.to_string(),
                format!("{:?}", r.seconds),
            ];
            let metrics = names
                .iter()
                .map(|n| r.metrics.get(n).map_or(String::new(), |v| format!("{v:?}")));
            w.write_record(fixed.into_iter().chain(metrics))
                .expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 fields")
    }

    /// Parses [`History::to_csv`]'s format (fields trimmed, blank lines skipped); errors
    /// name the line (of the CSV reader's count, which skips blank lines).
    pub fn from_csv(text: &str) -> Result<History, String> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut records = r.records();
        let cols = match records.next() {
            None => return Err("empty file".into()),
            Some(Err(e)) => return Err(csv_error(&e)),
            Some(Ok(h)) => h,
        };
        let fixed = ["epoch", "train_cost", "batches", "seconds"];
        if cols.len() < 4 || cols.iter().take(4).ne(fixed) {
            return Err(format!(
                "line 1: the header must start with {}, not {:?}",
                fixed.join(","),
                cols.iter().collect::<Vec<_>>().join(",")
            ));
        }
        let mut h = History::default();
        for rec in records {
            let fields = rec.map_err(|e| csv_error(&e))?;
            let line = fields.position().map_or(0, |p| p.line());
            if fields.len() != cols.len() {
                return Err(format!(
                    "line {line}: {} fields, the header has {}",
                    fields.len(),
                    cols.len()
                ));
            }
            let num = |j: usize| {
                fields[j].parse::<f64>().map_err(|_| {
                    format!("line {line}: {} {:?} is not a number", &cols[j], &fields[j])
                })
            };
            let int = |j: usize| {
                fields[j].parse::<usize>().map_err(|_| {
                    format!("line {line}: {} {:?} is not a count", &cols[j], &fields[j])
                })
            };
            let mut metrics = BTreeMap::new();
            for j in 4..cols.len() {
                if !fields[j].is_empty() {
                    metrics.insert(cols[j].to_string(), num(j)?);
                }
            }
            h.epochs.push(EpochRecord {
                epoch: int(0)?,
                train_cost: num(1)?,
                metrics,
                batches: int(2)?,
                seconds: num(3)?,
                batch_costs: None,
            });
        }
        Ok(h)
    }

    /// Writes the history to `path` atomically: CSV for a `.csv` path, else JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        let text = if is_csv(path) {
            self.to_csv()
        } else {
            serde_json::to_string_pretty(self).map_err(|e| history_err(path, e.to_string()))?
        };
        write_atomic(path, text.as_bytes())
    }

    /// Reads a history written by [`History::save`] (CSV for a `.csv` path, else JSON).
    pub fn load(path: impl AsRef<Path>) -> Result<History, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        if is_csv(path) {
            History::from_csv(&text).map_err(|e| history_err(path, e))
        } else {
            serde_json::from_str(&text).map_err(|e| history_err(path, e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, cost: f64, misclass: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            train_cost: cost,
            metrics: misclass
                .map(|m| [("misclassification".to_string(), m)].into())
                .unwrap_or_default(),
            batches: 62,
            seconds: 0.125,
            batch_costs: None,
        }
    }

    #[test]
    fn csv_round_trips_and_resumed_epochs_replace_later_ones() {
        let mut h = History::default();
        for e in 0..3 {
            h.push(record(
                e,
                2.0 / (e as f64 + 1.0),
                Some(0.1 / (e as f64 + 1.0)),
            ));
        }
        h.push(record(1, 0.7, None));
        assert_eq!(h.epochs.len(), 2);
        let csv = h.to_csv();
        assert_eq!(
            csv.lines().next(),
            Some("epoch,train_cost,batches,seconds,misclassification")
        );
        assert_eq!(History::from_csv(&csv).unwrap(), h);
        let e = History::from_csv("epoch,cost\n0,1\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = History::from_csv(&csv.replace("0.7", "x")).unwrap_err();
        assert!(e.contains("line 3") && e.contains("train_cost"), "{e}");
        let e = History::from_csv("epoch,train_cost,batches,seconds\n0,1,2\n").unwrap_err();
        assert!(e.contains("line 2: 3 fields, the header has 4"), "{e}");
    }

    #[test]
    fn metric_names_that_need_quoting_round_trip() {
        let mut h = History::default();
        let mut r = record(0, 1.5, Some(0.25));
        r.metrics.insert("top, 5 \"accuracy\"".to_string(), 0.5);
        h.push(r);
        let csv = h.to_csv();
        assert!(csv.contains("\"top, 5 \"\"accuracy\"\"\""), "{csv}");
        assert_eq!(History::from_csv(&csv).unwrap(), h);
    }
}
