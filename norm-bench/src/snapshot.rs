//! Tensors as exact JSON: `{"shape": [int], "f32_bits": [u32, row-major]}`.
//!
//! Each float32 is written as its IEEE-754 bit pattern, so comparing two files compares
//! bits, and PyTorch's side writes the same form (`tensor.view(torch.int32)`).

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// One tensor, bit-exact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorBits {
    /// The shape (empty for a 0-dim tensor).
    pub shape: Vec<usize>,
    /// The float32 bit patterns, row-major.
    pub f32_bits: Vec<u32>,
}

impl TensorBits {
    /// The bits of a float32 tensor (copied to the host, made contiguous).
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        anyhow::ensure!(t.kind() == Kind::Float, "expected a float32 tensor, got {:?}", t.kind());
        let shape = t.size().iter().map(|&d| d as usize).collect();
        let flat = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?.f_reshape([-1])?;
        let values = Vec::<f32>::try_from(&flat).context("reading tensor values")?;
        Ok(TensorBits { shape, f32_bits: values.into_iter().map(f32::to_bits).collect() })
    }

    /// A CPU float32 tensor with exactly these bits.
    pub fn to_tensor(&self) -> Result<Tensor> {
        let dims: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        Ok(Tensor::f_from_slice(&self.values())?.f_reshape(dims.as_slice())?)
    }

    /// The values as f32.
    pub fn values(&self) -> Vec<f32> {
        self.f32_bits.iter().map(|&b| f32::from_bits(b)).collect()
    }

    /// The largest distance in units in the last place between two tensors of equal shape
    /// (`None` if shapes differ); 0 means bit-equal. NaNs with equal bits count as equal.
    pub fn max_ulp(&self, other: &TensorBits) -> Option<u64> {
        if self.shape != other.shape || self.f32_bits.len() != other.f32_bits.len() {
            return None;
        }
        let ordered = |b: u32| -> i64 {
            if b & 0x8000_0000 != 0 {
                -((b & 0x7fff_ffff) as i64)
            } else {
                b as i64
            }
        };
        Some(
            self.f32_bits
                .iter()
                .zip(&other.f32_bits)
                .map(|(&a, &b)| if a == b { 0 } else { ordered(a).abs_diff(ordered(b)) })
                .max()
                .unwrap_or(0),
        )
    }
}

/// Named tensors at one point of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Where in the run (`initial`, `after_loop1`, `final`).
    pub label: String,
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorBits>,
}
