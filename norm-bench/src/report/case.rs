//! A timing case and what it is made of: the weight [`Shape`], the [`DType`], the
//! [`DeviceKind`], and the [`Case`] itself (an op on a weight of a dtype on a device),
//! with the names they have in the CSV, the config file and the Python protocol.

use super::ops::Op;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tch::{Device, Kind};

/// A case's dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DType {
    /// `torch.float32`.
    F32,
    /// `torch.float64`.
    F64,
    /// `torch.bfloat16`.
    Bf16,
    /// `torch.float16`.
    F16,
}

impl DType {
    /// Every dtype.
    pub(crate) const ALL: [DType; 4] = [DType::F32, DType::F64, DType::Bf16, DType::F16];

    /// The name in the CSV and the protocol (`f32`, `f64`, `bf16`, `f16`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
        }
    }

    /// The libtorch kind.
    pub(crate) fn kind(self) -> Kind {
        match self {
            DType::F32 => Kind::Float,
            DType::F64 => Kind::Double,
            DType::Bf16 => Kind::BFloat16,
            DType::F16 => Kind::Half,
        }
    }

    /// `sizeof` one element.
    pub(crate) fn size_bytes(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::Bf16 | DType::F16 => 2,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        DType::ALL
            .into_iter()
            .find(|d| d.name() == text)
            .ok_or_else(|| format!("unknown dtype '{text}' (known: f32, f64, bf16, f16)"))
    }
}

/// A case's device: the CPU or the first CUDA device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DeviceKind {
    /// The CPU.
    Cpu,
    /// CUDA device 0 (`cuda:0`).
    Cuda,
}

impl DeviceKind {
    /// The name in the CSV and the protocol (`cpu`, `cuda`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        }
    }

    /// The libtorch device.
    pub(crate) fn device(self) -> Device {
        match self {
            DeviceKind::Cpu => Device::Cpu,
            DeviceKind::Cuda => Device::Cuda(0),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda),
            other => Err(format!("unknown device '{other}' (known: cpu, cuda)")),
        }
    }
}

/// A weight shape `rows x cols`, written `512x2048` (a bare `512` means `512x512`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Shape {
    /// The first dimension (output features of a Linear).
    pub(crate) rows: u64,
    /// The second dimension (input features).
    pub(crate) cols: u64,
}

impl Shape {
    /// `n x n`.
    pub(crate) fn square(n: u64) -> Self {
        Shape { rows: n, cols: n }
    }

    /// Elements of the weight.
    pub(crate) fn elements(&self) -> u64 {
        self.rows * self.cols
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

impl FromStr for Shape {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let dim = |part: &str| match part.trim().parse::<u64>() {
            Ok(0) => Err(format!("a dimension must be at least 1 in shape '{text}'")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("expected a shape like 512x2048 or 512, got '{text}'")),
        };
        match text.split_once('x') {
            Some((rows, cols)) => Ok(Shape { rows: dim(rows)?, cols: dim(cols)? }),
            None => Ok(Shape::square(dim(text)?)),
        }
    }
}

impl Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Square(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::Square(0) => Err(serde::de::Error::custom("a shape's size must be at least 1")),
            Raw::Square(n) => Ok(Shape::square(n)),
        }
    }
}

/// One timed case: an op on a `rows x cols` weight of a dtype on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Case {
    /// What is timed.
    pub(crate) op: Op,
    /// The weight's first dimension.
    pub(crate) rows: u64,
    /// The weight's second dimension.
    pub(crate) cols: u64,
    /// The dtype of the weight (and of every tensor of the case).
    pub(crate) dtype: DType,
    /// Where the case runs.
    pub(crate) device: DeviceKind,
    /// Power iterations per evaluation, for the ops that iterate; `None` for the others.
    pub(crate) n_power_iterations: Option<u64>,
}

impl Case {
    /// A case on the CPU in float32 without power iterations.
    pub(crate) fn cpu_f32(op: Op, shape: Shape) -> Self {
        Case {
            op,
            rows: shape.rows,
            cols: shape.cols,
            dtype: DType::F32,
            device: DeviceKind::Cpu,
            n_power_iterations: None,
        }
    }

    /// The weight's shape.
    pub(crate) fn shape(&self) -> Shape {
        Shape { rows: self.rows, cols: self.cols }
    }

    /// `weight_norm_forward 512x512 f32 cpu` (with ` k=10` for iterating ops).
    pub(crate) fn label(&self) -> String {
        let mut label = format!("{} {} {} {}", self.op, self.shape(), self.dtype, self.device);
        if let Some(k) = self.n_power_iterations {
            label.push_str(&format!(" k={k}"));
        }
        label
    }

    /// Bytes moved per iteration for the bandwidth columns (see [`Op::bytes_moved`]).
    pub(crate) fn bytes_moved(&self) -> Option<u64> {
        self.op.bytes_moved(self.rows, self.cols, self.dtype)
    }

    /// `[rows, cols]` as libtorch dims.
    pub(crate) fn dims(&self) -> Result<[i64; 2]> {
        Ok([i64::try_from(self.rows)?, i64::try_from(self.cols)?])
    }

    /// The power iterations of an iterating op's case (an error when missing or 0).
    pub(crate) fn k(&self) -> Result<usize> {
        match self.n_power_iterations {
            Some(k) if k >= 1 => Ok(k as usize),
            _ => bail!("{} needs n_power_iterations >= 1", self.op),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for dtype in DType::ALL {
            assert_eq!(dtype.name().parse::<DType>().unwrap(), dtype);
            assert_eq!(serde_json::to_string(&dtype).unwrap(), format!("\"{}\"", dtype.name()));
        }
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda);
        assert_eq!("512x2048".parse::<Shape>().unwrap(), Shape { rows: 512, cols: 2048 });
        assert_eq!("64".parse::<Shape>().unwrap(), Shape::square(64));
        assert!("0x4".parse::<Shape>().is_err());
        assert!("4xq".parse::<Shape>().is_err());
        assert_eq!(
            serde_json::from_str::<Vec<Shape>>(r#"["3x2", 8]"#).unwrap(),
            [Shape { rows: 3, cols: 2 }, Shape::square(8)]
        );
    }

    #[test]
    fn a_case_serializes_as_the_protocol_names_it() {
        let case =
            Case { n_power_iterations: Some(5), ..Case::cpu_f32(Op::PowerIteration, Shape { rows: 8, cols: 16 }) };
        assert_eq!(
            serde_json::to_string(&case).unwrap(),
            r#"{"op":"power_iteration","rows":8,"cols":16,"dtype":"f32","device":"cpu","n_power_iterations":5}"#
        );
        assert_eq!(case.label(), "power_iteration 8x16 f32 cpu k=5");
        assert_eq!(Case::cpu_f32(Op::WeightNormForward, Shape::square(4096)).bytes_moved(), Some(2 * 4096 * 4096 * 4));
        assert_eq!(Case::cpu_f32(Op::PowerIteration, Shape::square(8)).bytes_moved(), None);
    }
}
