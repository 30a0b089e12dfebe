//! A small Prometheus registry: counters, gauges and histograms with labels, rendered in
//! the text exposition format.
//!
//! Series are updated once per batch, commit or rebalance, never per record, so a locked
//! map per family costs nothing measurable; the data path never waits on a scrape for
//! longer than one family's render.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// What a family measures.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into these upper bounds (seconds, bytes, …).
    Histogram(&'static [f64]),
}

#[derive(Debug, Clone)]
enum Value {
    Number(f64),
    Histogram {
        buckets: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

/// One metric name with its series, one per combination of label values.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, Value>>,
}

impl Family {
    /// A family called `name` (with its unit and `_total` suffix) with these label names.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            help,
            kind,
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    fn update(&self, labels: &[&str], f: impl FnOnce(&mut Value)) {
        debug_assert_eq!(labels.len(), self.labels.len(), "{}", self.name);
        let key: Vec<String> = labels.iter().map(|l| (*l).to_string()).collect();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let value = series.entry(key).or_insert_with(|| match self.kind {
            Kind::Histogram(bounds) => Value::Histogram {
                buckets: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
            },
            _ => Value::Number(0.0),
        });
        f(value);
    }

    /// Adds `by` to a counter (or gauge).
    pub fn add(&self, labels: &[&str], by: f64) {
        self.update(labels, |v| {
            if let Value::Number(n) = v {
                *n += by;
            }
        });
    }

    /// Sets a gauge.
    pub fn set(&self, labels: &[&str], to: f64) {
        self.update(labels, |v| {
            if let Value::Number(n) = v {
                *n = to;
            }
        });
    }

    /// Counts one observation into a histogram.
    pub fn observe(&self, labels: &[&str], x: f64) {
        let Kind::Histogram(bounds) = self.kind else {
            return;
        };
        self.update(labels, |v| {
            if let Value::Histogram {
                buckets,
                sum,
                count,
            } = v
            {
                for (b, bound) in buckets.iter_mut().zip(bounds) {
                    if x <= *bound {
                        *b += 1;
                    }
                }
                *sum += x;
                *count += 1;
            }
        });
    }

    /// Every counter or gauge series, with its label values.
    pub fn numbers(&self) -> Vec<(Vec<String>, f64)> {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series
            .iter()
            .filter_map(|(k, v)| match v {
                Value::Number(n) => Some((k.clone(), *n)),
                Value::Histogram { .. } => None,
            })
            .collect()
    }

    /// Appends the family in the text exposition format.
    pub fn render(&self, out: &mut String) {
        let kind = match self.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
        let series = self
            .series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (values, value) in &series {
            let labels = label_text(self.labels, values, None);
            match value {
                Value::Number(n) => {
                    let _ = writeln!(out, "{}{labels} {}", self.name, number(*n));
                }
                Value::Histogram {
                    buckets,
                    sum,
                    count,
                } => self.render_histogram(out, values, buckets, *sum, *count),
            }
        }
    }

    fn render_histogram(
        &self,
        out: &mut String,
        values: &[String],
        buckets: &[u64],
        sum: f64,
        count: u64,
    ) {
        let Kind::Histogram(bounds) = self.kind else {
            return;
        };
        for (bound, n) in bounds.iter().zip(buckets) {
            let le = label_text(self.labels, values, Some(&number(*bound)));
            let _ = writeln!(out, "{}_bucket{le} {n}", self.name);
        }
        let inf = label_text(self.labels, values, Some("+Inf"));
        let _ = writeln!(out, "{}_bucket{inf} {count}", self.name);
        let labels = label_text(self.labels, values, None);
        let _ = writeln!(out, "{}_sum{labels} {}", self.name, number(sum));
        let _ = writeln!(out, "{}_count{labels} {count}", self.name);
    }
}

/// `{name="value",…}` (with `le` for a histogram bucket), or nothing without labels.
fn label_text(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Integers without a fraction, others as Rust prints them.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_escaped_labels() {
        let f = Family::new("floe_x_total", "Xs.", Kind::Counter, &["table"]);
        f.add(&["a\"b"], 2.0);
        f.add(&["a\"b"], 1.0);
        let mut out = String::new();
        f.render(&mut out);
        assert!(out.contains("# TYPE floe_x_total counter"), "{out}");
        assert!(out.contains("floe_x_total{table=\"a\\\"b\"} 3\n"), "{out}");
        assert_eq!(f.numbers(), vec![(vec!["a\"b".to_string()], 3.0)]);
    }

    #[test]
    fn histograms_are_cumulative() {
        const BOUNDS: &[f64] = &[0.1, 1.0];
        let f = Family::new("floe_d_seconds", "D.", Kind::Histogram(BOUNDS), &[]);
        for x in [0.05, 0.5, 5.0] {
            f.observe(&[], x);
        }
        let mut out = String::new();
        f.render(&mut out);
        for line in [
            "floe_d_seconds_bucket{le=\"0.1\"} 1",
            "floe_d_seconds_bucket{le=\"1\"} 2",
            "floe_d_seconds_bucket{le=\"+Inf\"} 3",
            "floe_d_seconds_sum 5.55",
            "floe_d_seconds_count 3",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
