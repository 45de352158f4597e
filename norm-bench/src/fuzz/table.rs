//! The fuzz run's summary: cases per input family x outcome, as CSV and as markdown,
//! with the bad cases listed under the table (index, outcome, what was done).

use super::outcome::Outcome;
use super::{CaseResult, Family};
use std::collections::BTreeMap;

/// Counts per family and outcome, and the bad cases.
#[derive(Debug, Default)]
pub struct Table {
    families: Vec<Family>,
    counts: BTreeMap<(Family, Outcome), u64>,
    bad: Vec<(u64, Family, Outcome, String)>,
}

impl Table {
    /// The table of `results` over `families`.
    pub fn of(results: &[CaseResult], families: &[Family]) -> Self {
        let mut table = Table { families: families.to_vec(), ..Table::default() };
        for r in results {
            *table.counts.entry((r.case.family, r.outcome)).or_default() += 1;
            if r.outcome.is_bad() {
                table.bad.push((r.index, r.case.family, r.outcome, r.case.what.clone()));
            }
        }
        table
    }

    fn count(&self, family: Family, outcome: Outcome) -> u64 {
        self.counts.get(&(family, outcome)).copied().unwrap_or(0)
    }

    /// `family,clean_error,success,...`, one row per family.
    pub fn csv(&self) -> String {
        let mut out = format!("family,{},total\n", Outcome::ALL.map(Outcome::name).join(","));
        for &f in &self.families {
            let counts: Vec<u64> = Outcome::ALL.iter().map(|&o| self.count(f, o)).collect();
            let total: u64 = counts.iter().sum();
            out.push_str(&format!(
                "{},{},{total}\n",
                f.name(),
                counts.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
            ));
        }
        out
    }

    /// The markdown table, then the bad cases with their replay command.
    pub fn markdown(&self, seed: u64, families: &str) -> String {
        let mut out = format!(
            "| family | {} | total |\n|---|{}---:|\n",
            Outcome::ALL.map(Outcome::name).join(" | "),
            "---:|".repeat(Outcome::ALL.len())
        );
        for &f in &self.families {
            let counts: Vec<u64> = Outcome::ALL.iter().map(|&o| self.count(f, o)).collect();
            let total: u64 = counts.iter().sum();
            out.push_str(&format!(
                "| {} | {} | {total} |\n",
                f.name(),
                counts.iter().map(u64::to_string).collect::<Vec<_>>().join(" | ")
            ));
        }
        if !self.bad.is_empty() {
            out.push_str(&format!(
                "\nBad cases (replay: `norm-bench fuzz --seed {seed} --families {families} --case N`):\n\n"
            ));
            for (index, family, outcome, what) in &self.bad {
                out.push_str(&format!("- case {index} ({}): {} — {what}\n", family.name(), outcome.name()));
            }
        }
        out
    }
}
