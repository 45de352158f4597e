//! Compares a Rust parity output with a PyTorch one, tensor by tensor, bit for bit.

use super::run::{CaseOutput, ParityOutput};
use crate::snapshot::TensorBits;
use std::collections::BTreeSet;

/// One row of the comparison table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Case name.
    pub case: String,
    /// Step (0 for case-level rows: errors, missing cases).
    pub step: u64,
    /// Tensor name, or what was compared (`error type`, `steps`).
    pub tensor: String,
    /// Whether both sides agree exactly.
    pub equal: bool,
    /// Max ULP distance for tensors of equal shape; `None` where not applicable.
    pub max_ulp: Option<u64>,
    /// What differs, for unequal rows.
    pub note: String,
}

fn row(case: &str, step: u64, tensor: &str, equal: bool, max_ulp: Option<u64>, note: String) -> Row {
    Row { case: case.to_string(), step, tensor: tensor.to_string(), equal, max_ulp, note }
}

fn tensor_row(case: &str, step: u64, name: &str, ours: Option<&TensorBits>, theirs: Option<&TensorBits>) -> Row {
    match (ours, theirs) {
        (Some(a), Some(b)) if a.shape != b.shape => {
            row(case, step, name, false, None, format!("shape {:?} vs PyTorch {:?}", a.shape, b.shape))
        }
        (Some(a), Some(b)) => {
            let ulp = a.max_ulp(b);
            row(case, step, name, a == b, ulp, String::new())
        }
        (Some(_), None) => row(case, step, name, false, None, "only in Rust".into()),
        (None, Some(_)) => row(case, step, name, false, None, "only in PyTorch".into()),
        (None, None) => row(case, step, name, true, Some(0), String::new()),
    }
}

fn compare_case(ours: &CaseOutput, theirs: &CaseOutput, rows: &mut Vec<Row>) {
    let name = &ours.name;
    match (&ours.error, &theirs.error) {
        (Some(a), Some(b)) => {
            rows.push(row(
                name,
                0,
                "error type",
                a.kind == b.kind,
                None,
                if a.kind == b.kind { String::new() } else { format!("{} vs PyTorch {}", a.kind, b.kind) },
            ));
            return;
        }
        (Some(a), None) => {
            return rows.push(row(
                name,
                0,
                "error type",
                false,
                None,
                format!("Rust raised {}: {}; PyTorch ran", a.kind, a.message),
            ))
        }
        (None, Some(b)) => {
            return rows.push(row(
                name,
                0,
                "error type",
                false,
                None,
                format!("PyTorch raised {}: {}; Rust ran", b.kind, b.message),
            ))
        }
        (None, None) => {}
    }
    let (ours_steps, theirs_steps) = (ours.steps.as_deref().unwrap_or(&[]), theirs.steps.as_deref().unwrap_or(&[]));
    let same_count = ours_steps.len() == theirs_steps.len();
    let note = if same_count {
        String::new()
    } else {
        format!("{} steps vs PyTorch {}", ours_steps.len(), theirs_steps.len())
    };
    rows.push(row(name, 0, "step count", same_count, None, note));
    for (a, b) in ours_steps.iter().zip(theirs_steps) {
        let names: BTreeSet<&String> = a.tensors.keys().chain(b.tensors.keys()).collect();
        for tensor in names {
            rows.push(tensor_row(name, a.step, tensor, a.tensors.get(tensor), b.tensors.get(tensor)));
        }
    }
}

/// Every comparison row, in PyTorch's case order; cases present on one side only are rows too.
pub fn compare(ours: &ParityOutput, theirs: &ParityOutput) -> Vec<Row> {
    let mut rows = Vec::new();
    for theirs_case in &theirs.cases {
        match ours.cases.iter().find(|c| c.name == theirs_case.name) {
            Some(ours_case) => compare_case(ours_case, theirs_case, &mut rows),
            None => rows.push(row(&theirs_case.name, 0, "case", false, None, "only in PyTorch".into())),
        }
    }
    for ours_case in &ours.cases {
        if !theirs.cases.iter().any(|c| c.name == ours_case.name) {
            rows.push(row(&ours_case.name, 0, "case", false, None, "only in Rust".into()));
        }
    }
    rows
}

/// The table as text: `case  step  tensor  bit-equal  max ULP  note`, then a summary line.
pub fn render(rows: &[Row], only_differences: bool) -> String {
    let shown: Vec<&Row> = rows.iter().filter(|r| !only_differences || !r.equal).collect();
    let case_w = shown.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let tensor_w = shown.iter().map(|r| r.tensor.len()).max().unwrap_or(6).max(6);
    let mut out = format!(
        "{:<case_w$}  {:>4}  {:<tensor_w$}  {:<9}  {:>7}  note\n",
        "case", "step", "tensor", "bit-equal", "max ULP"
    );
    for r in shown {
        let ulp = r.max_ulp.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
        out += &format!(
            "{:<case_w$}  {:>4}  {:<tensor_w$}  {:<9}  {:>7}  {}\n",
            r.case,
            r.step,
            r.tensor,
            if r.equal { "yes" } else { "NO" },
            ulp,
            r.note
        );
    }
    let differing = rows.iter().filter(|r| !r.equal).count();
    let cases: BTreeSet<&str> = rows.iter().map(|r| r.case.as_str()).collect();
    let bad_cases: BTreeSet<&str> = rows.iter().filter(|r| !r.equal).map(|r| r.case.as_str()).collect();
    out += &format!(
        "{} comparisons in {} cases: {} differ (in {} cases)\n",
        rows.len(),
        cases.len(),
        differing,
        bad_cases.len()
    );
    out
}
