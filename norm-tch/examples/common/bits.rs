//! float32 tensors as the Python scripts of `data/` write them (data/seed_loop.py's
//! `bits`: `{"shape": [int], "f32_bits": [u32, row-major]}`), and ULP distances.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// A float32 tensor's shape and IEEE-754 bit patterns, row-major.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bits {
    /// The shape.
    pub shape: Vec<i64>,
    /// The bit patterns, row-major.
    pub f32_bits: Vec<u32>,
}

impl Bits {
    /// The bits of a float32 tensor (detached, made contiguous, on the CPU).
    pub fn of(t: &Tensor) -> Result<Bits> {
        ensure!(t.kind() == Kind::Float, "expected a float32 tensor, got {:?}", t.kind());
        let t = t.f_detach()?.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        let values = Vec::<f32>::try_from(&t.f_reshape([-1])?)?;
        Ok(Bits { shape: t.size(), f32_bits: values.iter().map(|v| v.to_bits()).collect() })
    }

    /// A CPU float32 tensor with exactly these bits.
    pub fn to_tensor(&self) -> Result<Tensor> {
        let values: Vec<f32> = self.f32_bits.iter().map(|&b| f32::from_bits(b)).collect();
        Ok(Tensor::f_from_slice(&values)?.f_reshape(self.shape.as_slice())?)
    }

    /// The largest distance in units in the last place to `other` (0: bit-equal; NaNs with
    /// equal bits count as equal; +0 and -0 are 1 apart); `None` if the shapes differ.
    pub fn max_ulp(&self, other: &Bits) -> Option<u64> {
        if self.shape != other.shape || self.f32_bits.len() != other.f32_bits.len() {
            return None;
        }
        Some(
            self.f32_bits
                .iter()
                .zip(&other.f32_bits)
                .map(|(&a, &b)| if a == b { 0 } else { ordered(a).abs_diff(ordered(b)) })
                .max()
                .unwrap_or(0),
        )
    }

    /// The largest absolute difference to `other` (of the same length), as f64.
    pub fn max_abs_diff(&self, other: &Bits) -> f64 {
        self.f32_bits
            .iter()
            .zip(&other.f32_bits)
            .map(|(&a, &b)| (f32::from_bits(a) as f64 - f32::from_bits(b) as f64).abs())
            .fold(0.0, f64::max)
    }

    /// How many elements differ in their bits from `other` (of the same length).
    pub fn count_differing(&self, other: &Bits) -> usize {
        self.f32_bits.iter().zip(&other.f32_bits).filter(|(a, b)| a != b).count()
    }

    /// A one-line summary: shape, the first values, and an FNV-1a hash of the bits (equal
    /// hashes: equal bits, for comparing runs by eye).
    pub fn summary(&self) -> String {
        let first: Vec<String> = self.f32_bits.iter().take(4).map(|&b| format!("{:.7e}", f32::from_bits(b))).collect();
        let more = if self.f32_bits.len() > 4 { ", ..." } else { "" };
        format!("shape {:?}, [{}{more}], bits hash {:016x}", self.shape, first.join(", "), self.hash())
    }

    /// FNV-1a (64-bit) over the little-endian bytes of the bit patterns.
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.f32_bits.iter().flat_map(|u| u.to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }
}

/// The bit pattern mapped to a line where adjacent floats are adjacent integers.
fn ordered(b: u32) -> i64 {
    if b & 0x8000_0000 != 0 {
        -((b & 0x7fff_ffff) as i64) - 1
    } else {
        b as i64
    }
}
