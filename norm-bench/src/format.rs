//! Printing tensors the way Python prints them in the seed document
//! (`Parameter containing:\ntensor([[ 0.0000, -0.0200], ...], requires_grad=True)`).

use anyhow::Result;
use tch::{Device, Kind, Tensor};

/// PyTorch's default repr with 4 decimals (fixed notation), one row per line.
/// `parameter` adds the `Parameter containing:` header and `requires_grad=True`.
pub fn python_repr(t: &Tensor, parameter: bool) -> Result<String> {
    let shape = t.size();
    let values = Vec::<f32>::try_from(
        &t.f_detach()?.f_to_kind(Kind::Float)?.f_to_device(Device::Cpu)?.f_contiguous()?.f_reshape([-1])?,
    )?;
    let cells: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
    let width = cells.iter().map(String::len).max().unwrap_or(0);
    let padded: Vec<String> = cells.iter().map(|c| format!("{c:>width$}")).collect();
    let body = match shape.as_slice() {
        [] => padded.join(""),
        [_] => format!("[{}]", padded.join(", ")),
        [_, cols] => {
            let rows: Vec<String> = padded.chunks(*cols as usize).map(|r| format!("[{}]", r.join(", "))).collect();
            format!("[{}]", rows.join(",\n        "))
        }
        _ => format!("{padded:?}"),
    };
    Ok(if parameter {
        format!("Parameter containing:\ntensor({body}, requires_grad=True)")
    } else {
        format!("tensor({body})")
    })
}
