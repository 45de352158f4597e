//! Conv1d/2d/3d, ConvTranspose1d/2d/3d and Embedding against live PyTorch
//! (`tests/layer_init.py` run by the repo venv's python): for each configuration, seeded
//! with the same seed on both sides, the init draws (`weight`, `bias`), one following
//! `torch.randn(4)` (the generator state construction leaves behind), and the forward on a
//! fixed input given as bits (tch's `Module::forward` and `forward_with_weight` with the
//! layer's own weight, and the layer's `f_forward`), compared bit for bit with one intra-op
//! thread on both sides; stride, padding, dilation and output padding differ per dimension in
//! several cases. Also: PyTorch's names in the VarStore; arguments PyTorch rejects fail at the
//! same stage (construction or forward) and as the matching error (`ValueError` and
//! `AssertionError` as `Error::InvalidArgument`, ATen's `RuntimeError` as `Error::Backend`),
//! drawing what PyTorch draws; the layers drop into `tch::nn::seq()`.
//!
//! Without `.venv/bin/python` the parity test prints `SKIPPED` and passes, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{bail, ensure, Context, Result};
use norm_core::Error;
use norm_tch::layers::{
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, embedding, Conv, ConvOptions,
    ConvTranspose, ConvTransposeOptions, Embedding, EmbeddingOptions, WeightedLayer,
};
use norm_tch::var_store::path_at;
use norm_test_support::{run_python_json, Bits};
use serde::Deserialize;
use serde_json::{json, Value};
use support::python_or_skip;
use tch::nn::{Module, PaddingMode, VarStore};
use tch::{Device, Kind, Tensor};

/// One layer configuration, as PyTorch's constructor arguments.
#[derive(Clone, Debug)]
enum Spec {
    Conv {
        kind: &'static str,
        in_channels: i64,
        out_channels: i64,
        kernel_size: Vec<i64>,
        stride: Vec<i64>,
        padding: Vec<i64>,
        dilation: Vec<i64>,
        output_padding: Vec<i64>,
        groups: i64,
        bias: bool,
        padding_mode: &'static str,
        spatial: Vec<i64>,
    },
    Embedding {
        num_embeddings: i64,
        embedding_dim: i64,
        padding_idx: Option<i64>,
        input_shape: Vec<i64>,
    },
}

/// A conv spec with PyTorch's defaults for everything not given.
fn conv(kind: &'static str, in_channels: i64, out_channels: i64, kernel_size: &[i64]) -> Spec {
    let n = kernel_size.len();
    let spatial = vec![if kind.starts_with("conv_transpose") { 4 } else { 7 }; n];
    Spec::Conv {
        kind,
        in_channels,
        out_channels,
        kernel_size: kernel_size.to_vec(),
        stride: vec![1; n],
        padding: vec![0; n],
        dilation: vec![1; n],
        output_padding: vec![0; n],
        groups: 1,
        bias: true,
        padding_mode: "zeros",
        spatial,
    }
}

impl Spec {
    fn set(mut self, f: impl FnOnce(&mut Spec)) -> Spec {
        f(&mut self);
        self
    }
    fn stride(self, v: &[i64]) -> Spec {
        self.set(|s| {
            if let Spec::Conv { stride, .. } = s {
                *stride = v.to_vec()
            }
        })
    }
    fn padding(self, v: &[i64]) -> Spec {
        self.set(|s| {
            if let Spec::Conv { padding, .. } = s {
                *padding = v.to_vec()
            }
        })
    }
    fn dilation(self, v: &[i64]) -> Spec {
        self.set(|s| {
            if let Spec::Conv { dilation, .. } = s {
                *dilation = v.to_vec()
            }
        })
    }
    fn output_padding(self, v: &[i64]) -> Spec {
        self.set(|s| {
            if let Spec::Conv { output_padding, .. } = s {
                *output_padding = v.to_vec()
            }
        })
    }
    fn groups(self, g: i64) -> Spec {
        self.set(|s| {
            if let Spec::Conv { groups, .. } = s {
                *groups = g
            }
        })
    }
    fn no_bias(self) -> Spec {
        self.set(|s| {
            if let Spec::Conv { bias, .. } = s {
                *bias = false
            }
        })
    }
    fn mode(self, m: &'static str) -> Spec {
        self.set(|s| {
            if let Spec::Conv { padding_mode, .. } = s {
                *padding_mode = m
            }
        })
    }
    fn spatial(self, v: &[i64]) -> Spec {
        self.set(|s| {
            if let Spec::Conv { spatial, .. } = s {
                *spatial = v.to_vec()
            }
        })
    }

    fn input_shape(&self) -> Vec<i64> {
        match self {
            // A negative channel count fails construction on both sides; the input just needs a shape.
            Spec::Conv { in_channels, spatial, .. } => [vec![2, (*in_channels).max(0)], spatial.clone()].concat(),
            Spec::Embedding { input_shape, .. } => input_shape.clone(),
        }
    }

    /// The input: float32 values from a fixed formula (exact dyadic numbers), or indices.
    fn input(&self) -> Result<Tensor> {
        let shape = self.input_shape();
        let numel: i64 = shape.iter().product();
        Ok(match self {
            Spec::Conv { .. } => {
                let values: Vec<f32> = (0..numel).map(|i| ((i * 7919 + 13) % 257) as f32 / 64.0 - 2.0).collect();
                Tensor::f_from_slice(&values)?.f_reshape(shape.as_slice())?
            }
            Spec::Embedding { num_embeddings, .. } => {
                Tensor::f_from_slice(&indices(numel, *num_embeddings))?.f_reshape(shape.as_slice())?
            }
        })
    }

    fn to_json(&self, seed: u64) -> Result<Value> {
        Ok(match self {
            Spec::Conv {
                kind,
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation,
                output_padding,
                groups,
                bias,
                padding_mode,
                ..
            } => {
                let bits: Vec<u32> =
                    Vec::<f32>::try_from(&self.input()?.f_reshape([-1])?)?.into_iter().map(f32::to_bits).collect();
                json!({
                    "kind": kind, "seed": seed, "in_channels": in_channels, "out_channels": out_channels,
                    "kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation,
                    "output_padding": output_padding, "groups": groups, "bias": bias, "padding_mode": padding_mode,
                    "input_shape": self.input_shape(), "input_bits": bits,
                })
            }
            Spec::Embedding { num_embeddings, embedding_dim, padding_idx, .. } => {
                let numel: i64 = self.input_shape().iter().product();
                json!({
                    "kind": "embedding", "seed": seed, "num_embeddings": num_embeddings, "embedding_dim": embedding_dim,
                    "padding_idx": padding_idx, "input_shape": self.input_shape(), "indices": indices(numel, *num_embeddings),
                })
            }
        })
    }

    /// The layer built by norm-tch under `prefix`.
    fn build(&self, vs: &VarStore, prefix: &str) -> norm_core::Result<Box<dyn Layer>> {
        match self.clone() {
            Spec::Embedding { num_embeddings, embedding_dim, padding_idx, .. } => {
                let options = EmbeddingOptions { padding_idx, ..Default::default() };
                Ok(Box::new(embedding(&path_at(vs, prefix), num_embeddings, embedding_dim, options)?))
            }
            Spec::Conv {
                kind,
                in_channels: i,
                out_channels: o,
                kernel_size: k,
                stride,
                padding,
                dilation,
                output_padding,
                groups,
                bias,
                padding_mode,
                ..
            } => {
                fn arr<const N: usize>(v: &[i64]) -> [i64; N] {
                    v.try_into().expect("spec arrays have the kernel's rank")
                }
                let mode = match padding_mode {
                    "zeros" => PaddingMode::Zeros,
                    "reflect" => PaddingMode::Reflect,
                    "replicate" => PaddingMode::Replicate,
                    "circular" => PaddingMode::Circular,
                    other => panic!("unknown padding mode {other}"),
                };
                macro_rules! conv_opts {
                    ($n:literal) => {
                        ConvOptions::<$n> {
                            stride: arr(&stride),
                            padding: arr(&padding),
                            dilation: arr(&dilation),
                            groups,
                            bias,
                            padding_mode: mode,
                        }
                    };
                }
                macro_rules! tr_opts {
                    ($n:literal) => {
                        ConvTransposeOptions::<$n> {
                            stride: arr(&stride),
                            padding: arr(&padding),
                            output_padding: arr(&output_padding),
                            groups,
                            bias,
                            dilation: arr(&dilation),
                        }
                    };
                }
                Ok(match kind {
                    "conv1d" => Box::new(conv1d(&path_at(vs, prefix), i, o, arr(&k), conv_opts!(1))?),
                    "conv2d" => Box::new(conv2d(&path_at(vs, prefix), i, o, arr(&k), conv_opts!(2))?),
                    "conv3d" => Box::new(conv3d(&path_at(vs, prefix), i, o, arr(&k), conv_opts!(3))?),
                    "conv_transpose1d" => Box::new(conv_transpose1d(&path_at(vs, prefix), i, o, arr(&k), tr_opts!(1))?),
                    "conv_transpose2d" => Box::new(conv_transpose2d(&path_at(vs, prefix), i, o, arr(&k), tr_opts!(2))?),
                    "conv_transpose3d" => Box::new(conv_transpose3d(&path_at(vs, prefix), i, o, arr(&k), tr_opts!(3))?),
                    other => panic!("unknown kind {other}"),
                })
            }
        }
    }

    fn has_bias(&self) -> bool {
        matches!(self, Spec::Conv { bias: true, .. })
    }

    fn is_transposed(&self) -> bool {
        matches!(self, Spec::Conv { kind, .. } if kind.starts_with("conv_transpose"))
    }
}

fn indices(numel: i64, num_embeddings: i64) -> Vec<i64> {
    (0..numel).map(|i| (i * 5 + 3) % num_embeddings.max(1)).collect()
}

/// What the test needs of every layer type: tch's `Module::forward`, the weighted forward,
/// the fallible forward, the bias.
trait Layer: WeightedLayer + Module {
    fn bias(&self) -> Option<&Tensor>;
    fn f_forward(&self, xs: &Tensor) -> norm_core::Result<Tensor>;
}

impl<const N: usize> Layer for Conv<N> {
    fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    fn f_forward(&self, xs: &Tensor) -> norm_core::Result<Tensor> {
        Conv::f_forward(self, xs)
    }
}

impl<const N: usize> Layer for ConvTranspose<N> {
    fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    fn f_forward(&self, xs: &Tensor) -> norm_core::Result<Tensor> {
        ConvTranspose::f_forward(self, xs)
    }
}

impl Layer for Embedding {
    fn bias(&self) -> Option<&Tensor> {
        None
    }
    fn f_forward(&self, xs: &Tensor) -> norm_core::Result<Tensor> {
        Embedding::f_forward(self, xs)
    }
}

fn specs() -> Vec<Spec> {
    vec![
        // Conv1d
        conv("conv1d", 3, 4, &[3]),
        conv("conv1d", 4, 6, &[2]).stride(&[2]).padding(&[1]).dilation(&[2]).groups(2).no_bias(),
        conv("conv1d", 2, 2, &[3]).padding(&[1]).mode("reflect"),
        conv("conv1d", 6, 3, &[1]).groups(3),
        // Conv2d
        conv("conv2d", 3, 4, &[3, 3]),
        conv("conv2d", 4, 6, &[3, 2]).stride(&[2, 1]).padding(&[1, 0]).dilation(&[1, 2]).groups(2),
        conv("conv2d", 2, 3, &[2, 3]).no_bias().spatial(&[5, 6]),
        conv("conv2d", 2, 2, &[3, 3]).padding(&[1, 1]).mode("circular"),
        conv("conv2d", 4, 4, &[3, 1]).groups(4).padding(&[2, 2]).mode("replicate"),
        conv("conv2d", 16, 8, &[3, 3]).padding(&[1, 1]).spatial(&[6, 6]),
        // Non-zeros padding modes with a different padding per dimension (F.pad's reversed order).
        conv("conv2d", 2, 3, &[3, 3]).padding(&[1, 0]).mode("reflect").spatial(&[5, 6]),
        conv("conv2d", 2, 2, &[2, 3]).padding(&[0, 2]).stride(&[2, 1]).mode("circular").spatial(&[6, 5]),
        conv("conv2d", 4, 2, &[3, 2]).padding(&[2, 1]).dilation(&[1, 2]).groups(2).mode("replicate"),
        conv("conv1d", 3, 2, &[3]).padding(&[2]).stride(&[2]).mode("circular"),
        // Conv3d
        conv("conv3d", 2, 3, &[2, 2, 2]).spatial(&[4, 5, 3]),
        conv("conv3d", 4, 2, &[1, 2, 3]).groups(2).stride(&[1, 2, 1]).padding(&[0, 1, 1]).spatial(&[3, 4, 5]),
        conv("conv3d", 3, 6, &[3, 1, 2]).no_bias().dilation(&[1, 1, 2]).groups(3).spatial(&[4, 3, 5]),
        conv("conv3d", 2, 2, &[2, 3, 1]).padding(&[1, 0, 2]).mode("reflect").spatial(&[3, 4, 5]),
        conv("conv3d", 2, 4, &[1, 2, 2]).padding(&[0, 1, 2]).stride(&[2, 1, 3]).mode("replicate").spatial(&[3, 4, 5]),
        // ConvTranspose1d
        conv("conv_transpose1d", 3, 4, &[3]),
        conv("conv_transpose1d", 4, 6, &[2]).stride(&[2]).padding(&[1]).output_padding(&[1]).groups(2),
        conv("conv_transpose1d", 2, 3, &[3]).dilation(&[2]).output_padding(&[1]).no_bias(),
        // ConvTranspose2d
        conv("conv_transpose2d", 3, 4, &[3, 3]),
        conv("conv_transpose2d", 4, 6, &[3, 2])
            .stride(&[2, 2])
            .padding(&[1, 1])
            .output_padding(&[1, 1])
            .groups(2)
            .spatial(&[3, 4]),
        conv("conv_transpose2d", 2, 2, &[2, 3]).no_bias().dilation(&[2, 2]),
        conv("conv_transpose2d", 6, 9, &[1, 3]).groups(3).stride(&[3, 3]).output_padding(&[2, 2]),
        conv("conv_transpose2d", 3, 4, &[3, 3]).stride(&[2, 1]).padding(&[1, 0]),
        conv("conv_transpose2d", 4, 2, &[3, 2])
            .stride(&[2, 1])
            .padding(&[1, 0])
            .output_padding(&[1, 0])
            .dilation(&[1, 2])
            .groups(2)
            .spatial(&[3, 5]),
        conv("conv_transpose2d", 2, 3, &[2, 5]).stride(&[1, 3]).padding(&[0, 2]).output_padding(&[0, 2]).no_bias(),
        // ConvTranspose3d
        conv("conv_transpose3d", 2, 3, &[2, 2, 2]).spatial(&[2, 3, 2]),
        conv("conv_transpose3d", 4, 2, &[1, 2, 3])
            .groups(2)
            .stride(&[2, 2, 2])
            .output_padding(&[1, 1, 1])
            .spatial(&[2, 2, 3]),
        conv("conv_transpose3d", 3, 3, &[2, 1, 2]).no_bias().padding(&[1, 1, 1]).spatial(&[3, 3, 3]),
        conv("conv_transpose3d", 2, 3, &[3, 2, 3]).stride(&[1, 2, 1]).padding(&[1, 0, 1]).spatial(&[2, 3, 2]),
        conv("conv_transpose3d", 2, 2, &[2, 2, 3])
            .stride(&[1, 2, 3])
            .padding(&[0, 1, 1])
            .output_padding(&[0, 1, 2])
            .dilation(&[2, 1, 1])
            .spatial(&[2, 3, 2]),
        // ConvTranspose1d with output padding below the dilation but not the stride.
        conv("conv_transpose1d", 2, 2, &[3]).stride(&[1]).dilation(&[3]).output_padding(&[2]),
        // Embedding (numel >= 16 takes ATen's vectorized normal_ path, fewer the scalar one)
        Spec::Embedding { num_embeddings: 10, embedding_dim: 3, padding_idx: None, input_shape: vec![3, 4] },
        Spec::Embedding { num_embeddings: 5, embedding_dim: 3, padding_idx: Some(0), input_shape: vec![7] },
        Spec::Embedding { num_embeddings: 7, embedding_dim: 5, padding_idx: Some(-2), input_shape: vec![2, 3, 2] },
        Spec::Embedding { num_embeddings: 20, embedding_dim: 16, padding_idx: Some(19), input_shape: vec![4, 5] },
        Spec::Embedding { num_embeddings: 1, embedding_dim: 4, padding_idx: None, input_shape: vec![3] },
    ]
}

fn seed_for(i: usize) -> u64 {
    [0u64, 1, 42, 1234567, 2024, 987654321][i % 6] + i as u64
}

#[derive(Deserialize)]
struct PyResult {
    /// Absent when construction failed.
    weight: Option<Bits>,
    bias: Option<Bits>,
    next_randn: Bits,
    /// Absent when construction or the forward failed.
    forward: Option<Bits>,
    /// `"construct"` or `"forward"` when PyTorch raised, with the exception's type.
    error_stage: Option<String>,
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct PyOutput {
    torch: String,
    results: Vec<PyResult>,
}

/// `got`'s bits against PyTorch's (`{"shape", "bits"}` from layer_init.py), bit for bit.
fn compare(what: &str, got: &Tensor, expected: &Bits) -> Result<()> {
    Bits::of(got)?.ensure_eq(what, expected)
}

fn run_pytorch(python: &std::path::Path, cases: &Value) -> Result<PyOutput> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/layer_init.py");
    run_python_json(python, &script, &[], Some(cases))
}

#[test]
fn layers_draw_and_forward_like_pytorch() -> Result<()> {
    let Some(python) = python_or_skip("compare layer init against live PyTorch")? else { return Ok(()) };
    let specs = specs();
    let cases = Value::Array(specs.iter().enumerate().map(|(i, s)| s.to_json(seed_for(i))).collect::<Result<_>>()?);
    let py = run_pytorch(&python, &cases)?;
    for (spec, result) in specs.iter().zip(&py.results) {
        ensure!(
            result.error_stage.is_none(),
            "PyTorch rejects {spec:?} at {:?}: {:?}",
            result.error_stage,
            result.error_type
        );
    }
    ensure!(py.results.len() == specs.len(), "PyTorch returned {} results for {} cases", py.results.len(), specs.len());
    norm_tch::backend::set_num_threads(1)?;
    for (i, (spec, expected)) in specs.iter().zip(&py.results).enumerate() {
        let what = format!("case {i} (torch {}) {spec:?} seed {}", py.torch, seed_for(i));
        let vs = VarStore::new(Device::Cpu);
        let (layer, next) = {
            let _generator = norm_tch::backend::lock_global_generator();
            tch::manual_seed(seed_for(i) as i64);
            let layer = spec.build(&vs, "net.0").with_context(|| what.clone())?;
            (layer, Tensor::f_randn([4], (Kind::Float, Device::Cpu))?)
        };
        compare(&format!("{what} weight"), layer.weight(), expected.weight.as_ref().context("no weight")?)?;
        match (layer.bias(), &expected.bias) {
            (Some(b), Some(e)) => compare(&format!("{what} bias"), b, e)?,
            (None, None) => {}
            (got, _) => bail!(
                "{what}: Rust bias {:?}, PyTorch bias present: {}",
                got.map(Tensor::size),
                expected.bias.is_some()
            ),
        }
        compare(&format!("{what} next randn"), &next, &expected.next_randn)?;
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        let want: Vec<&str> = if spec.has_bias() { vec!["net.0.bias", "net.0.weight"] } else { vec!["net.0.weight"] };
        ensure!(names == want, "{what}: VarStore names {names:?}");
        ensure!(layer.weight().requires_grad(), "{what}: weight is not trainable");
        ensure!(
            layer.default_spectral_norm_dim() == if spec.is_transposed() { 1 } else { 0 },
            "{what}: default_spectral_norm_dim"
        );
        let x = spec.input()?;
        let forward = expected.forward.as_ref().context("no forward")?;
        compare(&format!("{what} forward_with_weight"), &layer.forward_with_weight(&x, layer.weight())?, forward)?;
        compare(&format!("{what} f_forward"), &layer.f_forward(&x)?, forward)?;
        compare(&format!("{what} Module::forward"), &layer.forward(&x), forward)?;
    }
    Ok(())
}

/// Arguments PyTorch rejects, and where it rejects them: `"construct"` (a `ValueError` or
/// `AssertionError` of the module's `__init__`, or `torch.empty`'s `RuntimeError`) or
/// `"forward"` (ATen's `RuntimeError`).
fn error_specs() -> Vec<(Spec, &'static str)> {
    let emb = |num_embeddings, embedding_dim, padding_idx| Spec::Embedding {
        num_embeddings,
        embedding_dim,
        padding_idx,
        input_shape: vec![3],
    };
    vec![
        // _ConvNd.__init__'s ValueErrors.
        (conv("conv2d", 2, 2, &[3, 3]).groups(0), "construct"),
        (conv("conv_transpose2d", 2, 2, &[3, 3]).groups(-2), "construct"),
        (conv("conv2d", 3, 4, &[3, 3]).groups(2), "construct"),
        (conv("conv2d", 4, 3, &[3, 3]).groups(2), "construct"),
        (conv("conv_transpose2d", 4, 3, &[3, 3]).groups(2), "construct"),
        (conv("conv1d", -3, 2, &[3]).groups(2), "construct"),
        // torch.empty's RuntimeError on a negative size.
        (conv("conv2d", -1, 2, &[3, 3]), "construct"),
        (conv("conv2d", 2, -1, &[3, 3]), "construct"),
        (conv("conv_transpose1d", 2, -2, &[3]).groups(2), "construct"),
        (conv("conv_transpose1d", 2, 2, &[-1]), "construct"),
        // Accepted at construction, rejected by ATen at the forward.
        (conv("conv2d", 2, 2, &[3, 3]).stride(&[1, 0]), "forward"),
        (conv("conv_transpose2d", 2, 2, &[3, 3]).stride(&[0, 1]), "forward"),
        (conv("conv3d", 2, 2, &[1, 1, 1]).padding(&[0, -1, 0]).spatial(&[3, 3, 3]), "forward"),
        (conv("conv_transpose1d", 2, 2, &[3]).padding(&[-1]), "forward"),
        (conv("conv1d", 2, 2, &[3]).dilation(&[0]), "forward"),
        (conv("conv2d", 2, 2, &[0, 3]), "forward"),
        (conv("conv2d", 2, 2, &[3, 3]).spatial(&[2, 7]), "forward"),
        (conv("conv2d", 2, 2, &[3, 3]).padding(&[7, 0]).mode("reflect"), "forward"),
        (conv("conv_transpose2d", 2, 2, &[3, 3]).stride(&[2, 2]).output_padding(&[2, 2]), "forward"),
        (conv("conv_transpose2d", 2, 2, &[3, 3]).stride(&[2, 1]).output_padding(&[1, 1]), "forward"),
        (conv("conv_transpose1d", 2, 2, &[3]).output_padding(&[-1]), "forward"),
        // nn.Embedding.__init__: AssertionError, torch.empty's RuntimeError, then
        // `weight[padding_idx]`'s IndexError for padding_idx 0 of no rows.
        (emb(10, 3, Some(10)), "construct"),
        (emb(10, 3, Some(-11)), "construct"),
        (emb(-1, 3, None), "construct"),
        (emb(3, -1, None), "construct"),
        (emb(-1, 3, Some(0)), "construct"),
        (emb(0, 3, Some(0)), "construct"),
        // Index 0 of no rows: ATen's IndexError at the forward.
        (emb(0, 3, None), "forward"),
    ]
}

/// Whether norm-tch's error is the one PyTorch's exception type maps to.
fn same_kind(err: &Error, pytorch: &str) -> bool {
    match pytorch {
        "ValueError" | "AssertionError" => matches!(err, Error::InvalidArgument { .. }),
        // ATen's checks (TORCH_CHECK, TORCH_CHECK_INDEX) come back through tch as Backend.
        "RuntimeError" | "IndexError" => matches!(err, Error::Backend { .. }),
        _ => false,
    }
}

#[test]
fn errors_come_where_and_as_pytorch_raises_them() -> Result<()> {
    let Some(python) = python_or_skip("compare layer errors against live PyTorch")? else { return Ok(()) };
    let specs = error_specs();
    let cases =
        Value::Array(specs.iter().enumerate().map(|(i, (s, _))| s.to_json(seed_for(i))).collect::<Result<_>>()?);
    let py = run_pytorch(&python, &cases)?;
    ensure!(py.results.len() == specs.len(), "PyTorch returned {} results for {} cases", py.results.len(), specs.len());
    norm_tch::backend::set_num_threads(1)?;
    for (i, ((spec, stage), expected)) in specs.iter().zip(&py.results).enumerate() {
        let what = format!("error case {i} (torch {}) {spec:?}", py.torch);
        let py_type = expected.error_type.as_deref().unwrap_or("nothing");
        ensure!(
            expected.error_stage.as_deref() == Some(*stage),
            "{what}: PyTorch raised {py_type} at {:?}, the test expects {stage}",
            expected.error_stage
        );
        let vs = VarStore::new(Device::Cpu);
        let (built, next) = {
            let _generator = norm_tch::backend::lock_global_generator();
            tch::manual_seed(seed_for(i) as i64);
            let built = spec.build(&vs, "net.0");
            (built, Tensor::f_randn([4], (Kind::Float, Device::Cpu))?)
        };
        compare(&format!("{what} next randn"), &next, &expected.next_randn)?;
        let err = match (built, *stage) {
            (Err(e), "construct") => {
                ensure!(
                    vs.variables().is_empty(),
                    "{what}: a failed construction registered {:?}",
                    vs.variables().keys()
                );
                e
            }
            (Ok(layer), "forward") => {
                compare(&format!("{what} weight"), layer.weight(), expected.weight.as_ref().context("no weight")?)?;
                let x = spec.input()?;
                let with_weight = layer.forward_with_weight(&x, layer.weight());
                ensure!(
                    matches!(with_weight, Err(Error::Backend { .. })),
                    "{what}: forward_with_weight gave {with_weight:?}"
                );
                match layer.f_forward(&x) {
                    Err(e) => e,
                    Ok(y) => bail!("{what}: the forward succeeded with shape {:?}", y.size()),
                }
            }
            (Ok(_), _) => bail!("{what}: constructed, PyTorch raised {py_type} at construction"),
            (Err(e), _) => bail!("{what}: construction failed with {e:?}, PyTorch constructs"),
        };
        ensure!(same_kind(&err, py_type), "{what}: got {err:?}, PyTorch raised {py_type}");
    }
    Ok(())
}

/// PyTorch raises `RuntimeError("non-positive stride is not supported")` at the forward, not
/// at `nn.Conv2d(2, 2, 3, stride=(1, 0))`; so does norm-tch (without needing Python).
#[test]
fn stride_zero_constructs_and_fails_at_the_forward() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let _generator = norm_tch::backend::lock_global_generator();
    let conv = conv2d(&(vs.root() / "c"), 2, 2, [3, 3], ConvOptions { stride: [1, 0], ..Default::default() })?;
    let x = Tensor::f_zeros([1, 2, 5, 5], (Kind::Float, Device::Cpu))?;
    match conv.f_forward(&x) {
        Err(Error::Backend { message, .. }) => ensure!(message.contains("stride"), "ATen's message: {message}"),
        other => bail!("expected Error::Backend, got {other:?}"),
    }
    ensure!(matches!(conv.forward_with_weight(&x, &conv.weight), Err(Error::Backend { .. })));
    let t = conv_transpose2d(
        &(vs.root() / "t"),
        2,
        2,
        [3, 3],
        ConvTransposeOptions { stride: [0, 2], ..Default::default() },
    )?;
    ensure!(matches!(t.f_forward(&x), Err(Error::Backend { .. })), "transposed stride 0");
    Ok(())
}

#[test]
fn layers_drop_into_tch_seq() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let _generator = norm_tch::backend::lock_global_generator();
    let net = tch::nn::seq()
        .add(conv2d(
            &(vs.root() / "0"),
            3,
            4,
            [3, 1],
            ConvOptions { stride: [2, 1], padding: [1, 0], padding_mode: PaddingMode::Reflect, ..Default::default() },
        )?)
        .add_fn(|x| x.relu())
        .add(conv_transpose2d(
            &(vs.root() / "2"),
            4,
            2,
            [3, 2],
            ConvTransposeOptions { stride: [2, 1], padding: [1, 0], output_padding: [1, 0], ..Default::default() },
        )?);
    let y = net.forward(&Tensor::f_ones([1, 3, 6, 5], (Kind::Float, Device::Cpu))?);
    ensure!(y.size() == [1, 2, 6, 6], "shape {:?}", y.size());
    let emb = tch::nn::seq().add(embedding(&(vs.root() / "emb"), 5, 3, EmbeddingOptions::default())?);
    ensure!(emb.forward(&Tensor::from_slice(&[0i64, 4, 2])).size() == [3, 3]);
    Ok(())
}

fn expect_invalid<T: std::fmt::Debug>(what: &str, result: norm_core::Result<T>, name: &str) {
    match result {
        Err(Error::InvalidArgument { name: got, .. }) if got == name => {}
        other => panic!("{what}: expected InvalidArgument naming `{name}`, got {other:?}"),
    }
}

fn expect_backend<T: std::fmt::Debug>(what: &str, result: norm_core::Result<T>) {
    match result {
        Err(Error::Backend { .. }) => {}
        other => panic!("{what}: expected Error::Backend (PyTorch's RuntimeError), got {other:?}"),
    }
}

/// What PyTorch rejects at construction, rejected at construction (without needing Python),
/// drawing and registering nothing.
#[test]
fn bad_arguments_fail_at_construction() {
    let vs = VarStore::new(Device::Cpu);
    let c2 = ConvOptions::<2>::default;
    let t2 = ConvTransposeOptions::<2>::default;
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(5);
    let before = Tensor::randn([4], (Kind::Float, Device::Cpu));
    tch::manual_seed(5);
    // _ConvNd.__init__'s ValueErrors.
    expect_invalid("groups 0", conv2d(&(vs.root() / "c"), 2, 2, [3, 3], ConvOptions { groups: 0, ..c2() }), "groups");
    expect_invalid(
        "groups -2",
        conv_transpose2d(&(vs.root() / "c"), 2, 2, [3, 3], ConvTransposeOptions { groups: -2, ..t2() }),
        "groups",
    );
    expect_invalid(
        "in % groups",
        conv2d(&(vs.root() / "c"), 3, 4, [3, 3], ConvOptions { groups: 2, ..c2() }),
        "in_channels",
    );
    expect_invalid(
        "out % groups",
        conv2d(&(vs.root() / "c"), 4, 3, [3, 3], ConvOptions { groups: 2, ..c2() }),
        "out_channels",
    );
    expect_invalid(
        "out % groups (transposed)",
        conv_transpose2d(&(vs.root() / "c"), 4, 3, [3, 3], ConvTransposeOptions { groups: 2, ..t2() }),
        "out_channels",
    );
    // torch.empty's RuntimeError.
    expect_backend("in -1", conv2d(&(vs.root() / "c"), -1, 2, [3, 3], c2()));
    expect_backend("out -1", conv2d(&(vs.root() / "c"), 2, -1, [3, 3], c2()));
    expect_backend("kernel -1", conv_transpose1d(&(vs.root() / "c"), 2, 2, [-1], ConvTransposeOptions::default()));
    expect_backend("num_embeddings -1", embedding(&(vs.root() / "e"), -1, 3, EmbeddingOptions::default()));
    expect_backend("embedding_dim -1", embedding(&(vs.root() / "e"), 3, -1, EmbeddingOptions::default()));
    // nn.Embedding's AssertionErrors, and weight[0]'s IndexError with no rows.
    expect_invalid(
        "padding_idx = num",
        embedding(&(vs.root() / "e"), 10, 3, EmbeddingOptions { padding_idx: Some(10), ..Default::default() }),
        "padding_idx",
    );
    expect_invalid(
        "padding_idx < -num",
        embedding(&(vs.root() / "e"), 10, 3, EmbeddingOptions { padding_idx: Some(-11), ..Default::default() }),
        "padding_idx",
    );
    expect_backend(
        "padding_idx 0 with no rows",
        embedding(&(vs.root() / "e"), 0, 3, EmbeddingOptions { padding_idx: Some(0), ..Default::default() }),
    );
    assert!(vs.variables().is_empty(), "failed constructions register nothing");
    assert!(Tensor::randn([4], (Kind::Float, Device::Cpu)).equal(&before), "failed constructions draw nothing");

    // What ATen rejects only at the forward constructs fine (a zero kernel draws nothing).
    conv2d(&(vs.root() / "k0"), 2, 2, [0, 3], c2()).unwrap();
    conv3d(
        &(vs.root() / "p"),
        2,
        2,
        [1, 1, 1],
        ConvOptions { padding: [0, -1, 0], dilation: [1, 0, 1], ..Default::default() },
    )
    .unwrap();
    conv_transpose2d(
        &(vs.root() / "op"),
        2,
        2,
        [3, 3],
        ConvTransposeOptions { stride: [2, 1], output_padding: [2, 1], ..t2() },
    )
    .unwrap();

    conv2d(&(vs.root() / "c"), 2, 2, [3, 3], c2()).unwrap();
    expect_invalid("taken name", conv2d(&(vs.root() / "c"), 2, 2, [3, 3], c2()), "name");
    expect_invalid("taken name (transposed)", conv_transpose2d(&(vs.root() / "c"), 2, 2, [3, 3], t2()), "name");
    embedding(&(vs.root() / "e"), 3, 2, EmbeddingOptions::default()).unwrap();
    expect_invalid("taken name (embedding)", embedding(&(vs.root() / "e"), 3, 2, EmbeddingOptions::default()), "name");
    assert_eq!(vs.variables().len(), 9);
}

#[test]
fn negative_padding_idx_is_stored_normalized() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let e = {
        let _generator = norm_tch::backend::lock_global_generator();
        embedding(&(vs.root() / "e"), 6, 3, EmbeddingOptions { padding_idx: Some(-1), ..Default::default() })?
    };
    let row = e.weight.f_get(5)?;
    ensure!(row.f_abs()?.f_sum(Kind::Float)?.double_value(&[]) == 0.0, "the padding row is zero");
    ensure!(e.options.padding_idx == Some(5), "stored as num_embeddings + padding_idx: {:?}", e.options);
    ensure!((e.num_embeddings, e.embedding_dim) == (6, 3));
    // The gradient of the padding row is zero, as torch.embedding's backward with padding_idx 5.
    let x = Tensor::from_slice(&[5i64, 1, 5]);
    e.forward_with_weight(&x, &e.weight)?.f_sum(Kind::Float)?.backward();
    ensure!(
        e.weight.grad().f_get(5)?.f_abs()?.f_sum(Kind::Float)?.double_value(&[]) == 0.0,
        "no gradient into the padding row"
    );
    ensure!(e.weight.grad().f_get(1)?.f_sum(Kind::Float)?.double_value(&[]) == 3.0, "gradient into row 1");
    Ok(())
}
