//! The operator norm of a convolution, `σ_op = max_{‖x‖=1} ‖A x‖₂`, by power iteration on
//! the convolution operator `A` itself (opt-in; nothing else in norm calls it).
//!
//! PyTorch's `spectral_norm` normalizes the *reshaped* kernel `W_mat` (`[out, in/groups·∏k]`,
//! `[out/groups, in·∏k]` for a transposed convolution with `dim=1`), whose largest singular
//! value [`reshaped_sigma`] is only a lower bound-like proxy of the convolution's operator
//! norm (pytorch/pytorch#99149): a "1-Lipschitz" convolution can have `σ_op > 1`. Here `A`
//! is the linear part of the layer's forward (no bias) on one sample of the spatial size the
//! caller gives, with the layer's stride, padding, dilation, groups (and, for a Conv,
//! `zeros` or `circular` padding mode), and its exact adjoint `Aᵀ`:
//!
//! - Conv: `A x = conv(x, W)`, `Aᵀ y = conv_transpose(y, W, output_padding = op)` with, per
//!   dimension, `op = S_in − ((S_out − 1)·s − 2p + d(k − 1) + 1)` (`0 ≤ op < s`), the output
//!   padding that makes the transposed convolution's output exactly `S_in` long, i.e. the true
//!   adjoint on that input size. Circular mode: `A = conv ∘ circular_pad`, and the pad's adjoint
//!   folds the wrapped borders back (`index_add` over `(j − p) mod n`).
//! - ConvTranspose: `A x = conv_transpose(x, W, output_padding)`, `Aᵀ y = conv(y, W)` cut to
//!   the first `S_in` positions per dimension (the positions past `S_in` are those the
//!   transposed convolution never reads).
//! - Linear: `A x = W x` (a 1-d convolution with kernel 1 on length 1).
//!
//! Everything runs in float64 on the weight's device. [`operator_norm`] iterates from a
//! deterministic start vector (splitmix64 of `seed`; the global generator is not touched):
//! `σ_k = ‖A v_k‖`, `u_k = A v_k / σ_k`, `w_k = Aᵀ u_k`, `v_{k+1} = w_k / ‖w_k‖`, and stops
//! when `bound_k ≤ tolerance · σ_k` or after `max_iterations`. The bound is
//! `bound_k = ‖Aᵀ u_k − σ_k v_k‖ / √2`: with `A v_k = σ_k u_k` exactly, `z = (u_k, v_k)/√2` is a
//! unit vector whose residual for the symmetric matrix `B = [[0, A], [Aᵀ, 0]]` (eigenvalues
//! `±σ_i` and zeros) is `‖B z − σ_k z‖ = bound_k`, so some singular value of `A` lies in
//! `[σ_k − bound_k, σ_k + bound_k]` (the residual bound for symmetric matrices). Also
//! `σ_k ≤ σ_op` always (`σ_k = ‖A v_k‖`, `‖v_k‖ = 1`). Power iteration's singular value is the
//! largest one unless the start vector is orthogonal to its singular subspace (probability
//! zero for a generic start); the tests check it against the dense SVD.

use crate::backend::tch_err;
use crate::layers::{Conv, ConvTranspose, WeightedLayer};
use norm_core::{Error, Result};
use tch::nn::PaddingMode;
use tch::{Kind, Tensor};

/// The geometry of a convolution, per spatial dimension (every list has one entry per
/// spatial dimension), as PyTorch's layers take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// ConvTranspose (weight `[in, out/groups, *k]`) rather than Conv (`[out, in/groups, *k]`).
    pub transposed: bool,
    /// Stride (positive).
    pub stride: Vec<i64>,
    /// Padding on both sides (non-negative).
    pub padding: Vec<i64>,
    /// Dilation (positive).
    pub dilation: Vec<i64>,
    /// ConvTranspose's `output_padding` (all zero for a Conv).
    pub output_padding: Vec<i64>,
    /// Groups (positive, dividing both channel counts).
    pub groups: i64,
    /// Conv's `padding_mode="circular"` (the padding wraps around); `false`: `zeros`.
    pub circular: bool,
}

/// The linear map of a convolution layer (no bias) on one input of a given spatial size,
/// with its exact adjoint, in float64 (see the [module docs](self)).
///
/// ```
/// use norm_tch::layers::{conv2d, ConvOptions};
/// use norm_tch::operator_norm::{operator_norm, AsOperator, OperatorNormOptions};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let conv = conv2d(&(vs.root() / "c"), 3, 8, [3, 3], ConvOptions { padding: [1, 1], ..Default::default() })?;
/// let op = conv.operator(&[8, 8])?; // A: R^{3×8×8} → R^{8×8×8}
/// let norm = operator_norm(&op, OperatorNormOptions { tolerance: 1e-4, ..Default::default() })?;
/// assert!(norm.converged && norm.bound <= 1e-4 * norm.sigma);
/// // PyTorch's spectral_norm normalizes by the reshaped kernel's σ, not the operator's:
/// let reshaped = norm_tch::operator_norm::reshaped_sigma(&conv.weight, 0)?;
/// assert!(norm.sigma > reshaped);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConvOperator {
    weight: Tensor,
    map: ConvMap,
}

/// The weight-free part of a [`ConvOperator`]: the geometry and shapes, with `A` and `Aᵀ`
/// for a weight given at each call, in the dtype given and differentiable (the operator-norm
/// layer, [`crate::layers::operator_norm`], computes its σ with it on its own weight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvMap {
    geometry: ConvGeometry,
    /// The convolution weight's shape (a Linear's `[out, in]` as `[out, in, 1]`).
    weight_shape: Vec<i64>,
    /// `[1, C_in, *S_in]`.
    input_shape: Vec<i64>,
    /// `[1, C_out, *S_out]`.
    output_shape: Vec<i64>,
    /// Conv: the adjoint's output padding; ConvTranspose: unused.
    adjoint_output_padding: Vec<i64>,
}

fn tensor_list(values: &[i64]) -> String {
    format!("{values:?}")
}

impl ConvOperator {
    /// The operator of a convolution with `weight` (any float dtype; copied to float64,
    /// detached) and `geometry` on one input of spatial size `input_size`.
    ///
    /// Errors ([`Error::InvalidArgument`] naming the argument and value): a weight of rank
    /// below 3 or with a non-finite entry; lists of the wrong length; a non-positive stride,
    /// dilation, group count or input size, a negative padding, an output padding not below
    /// the stride or the dilation; channels not divisible by `groups`; circular padding on a
    /// ConvTranspose or larger than the input; an empty output.
    pub fn new(weight: &Tensor, geometry: ConvGeometry, input_size: &[i64]) -> Result<Self> {
        let shape = weight.size();
        if shape.len() < 3 {
            return Err(Error::invalid("weight", tensor_list(&shape), "a convolution weight [c0, c1, *kernel]"));
        }
        let n = shape.len() - 2;
        let kernel = &shape[2..];
        let g = &geometry;
        for (name, list) in [
            ("input_size", input_size),
            ("stride", &g.stride[..]),
            ("padding", &g.padding[..]),
            ("dilation", &g.dilation[..]),
            ("output_padding", &g.output_padding[..]),
        ] {
            if list.len() != n {
                return Err(Error::invalid(name, tensor_list(list), format!("{n} entries, one per spatial dimension")));
            }
        }
        let positive = |name: &'static str, list: &[i64]| match list.iter().find(|&&x| x <= 0) {
            Some(_) => Err(Error::invalid(name, tensor_list(list), "positive entries")),
            None => Ok(()),
        };
        positive("input_size", input_size)?;
        positive("stride", &g.stride)?;
        positive("dilation", &g.dilation)?;
        if g.padding.iter().any(|&p| p < 0) {
            return Err(Error::invalid("padding", tensor_list(&g.padding), "non-negative entries"));
        }
        if g.groups <= 0 {
            return Err(Error::invalid("groups", g.groups, "a positive integer"));
        }
        let (c_in, c_out) =
            if g.transposed { (shape[0], shape[1] * g.groups) } else { (shape[1] * g.groups, shape[0]) };
        if shape[0] % g.groups != 0 {
            return Err(Error::invalid("groups", g.groups, format!("a divisor of the weight's dim 0 ({})", shape[0])));
        }
        let mut out_spatial = Vec::with_capacity(n);
        let mut adjoint_op = vec![0; n];
        for i in 0..n {
            let (s, p, d, k, size) = (g.stride[i], g.padding[i], g.dilation[i], kernel[i], input_size[i]);
            let reach = d * (k - 1) + 1;
            if g.transposed {
                let op = g.output_padding[i];
                if op < 0 || (op >= s && op >= d) {
                    return Err(Error::invalid(
                        "output_padding",
                        tensor_list(&g.output_padding),
                        "non-negative entries smaller than the stride or the dilation",
                    ));
                }
                if g.circular {
                    return Err(Error::invalid(
                        "padding_mode",
                        "circular",
                        "zeros for a ConvTranspose (PyTorch's only)",
                    ));
                }
                out_spatial.push((size - 1) * s - 2 * p + reach + op);
            } else {
                if g.output_padding[i] != 0 {
                    return Err(Error::invalid("output_padding", tensor_list(&g.output_padding), "zeros for a Conv"));
                }
                if g.circular && p > size {
                    return Err(Error::invalid(
                        "padding",
                        tensor_list(&g.padding),
                        format!("at most the input size {} for circular padding", tensor_list(input_size)),
                    ));
                }
                let span = size + 2 * p - reach;
                out_spatial.push(if span < 0 { 0 } else { span / s + 1 });
                // conv_transpose's output length without output padding, and what is missing.
                adjoint_op[i] = size + 2 * p - ((out_spatial[i] - 1) * s + reach);
            }
        }
        if out_spatial.iter().any(|&o| o <= 0) {
            return Err(Error::invalid(
                "input_size",
                tensor_list(input_size),
                format!("a size giving a non-empty output (got output size {})", tensor_list(&out_spatial)),
            ));
        }
        let weight = tch::no_grad(|| weight.f_to_kind(Kind::Double)).map_err(tch_err("to_kind"))?.detach();
        let finite = weight.f_isfinite().and_then(|t| t.f_all()).map_err(tch_err("isfinite"))?;
        if !bool::try_from(&finite).map_err(tch_err("isfinite"))? {
            return Err(Error::invalid("weight", "a weight with a non-finite entry", "finite entries"));
        }
        let mut input_shape = vec![1, c_in];
        input_shape.extend_from_slice(input_size);
        let mut output_shape = vec![1, c_out];
        output_shape.extend_from_slice(&out_spatial);
        let map =
            ConvMap { geometry, weight_shape: shape, input_shape, output_shape, adjoint_output_padding: adjoint_op };
        Ok(ConvOperator { weight, map })
    }

    /// `[1, C_in, *S_in]`: the shape [`ConvOperator::apply`] takes.
    pub fn input_shape(&self) -> &[i64] {
        &self.map.input_shape
    }

    /// `[1, C_out, *S_out]`: the shape [`ConvOperator::apply`] returns.
    pub fn output_shape(&self) -> &[i64] {
        &self.map.output_shape
    }

    /// The geometry.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.map.geometry
    }

    /// The geometry and shapes, without the weight.
    pub fn map(&self) -> &ConvMap {
        &self.map
    }

    /// `A x` for `x` of [`ConvOperator::input_shape`] (converted to float64).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.f_to_kind(Kind::Double).map_err(tch_err("to_kind"))?;
        self.map.apply(&self.weight, &x)
    }

    /// `Aᵀ y` for `y` of [`ConvOperator::output_shape`] (converted to float64): the
    /// transposed convolution with the adjoint's output padding (Conv), or the convolution
    /// cut to the input size (ConvTranspose); `⟨A x, y⟩ = ⟨x, Aᵀ y⟩`.
    pub fn adjoint(&self, y: &Tensor) -> Result<Tensor> {
        let y = y.f_to_kind(Kind::Double).map_err(tch_err("to_kind"))?;
        self.map.adjoint(&self.weight, &y)
    }
}

impl ConvMap {
    /// `[1, C_in, *S_in]`: the shape [`ConvMap::apply`] takes.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// `[1, C_out, *S_out]`: the shape [`ConvMap::apply`] returns.
    pub fn output_shape(&self) -> &[i64] {
        &self.output_shape
    }

    /// The geometry.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }

    /// The shape of the convolution weight [`ConvMap::apply`] takes (a Linear's `[out, in]`
    /// as `[out, in, 1]`).
    pub fn weight_shape(&self) -> &[i64] {
        &self.weight_shape
    }

    fn spatial(&self) -> usize {
        self.input_shape.len() - 2
    }

    fn check_shape(what: &'static str, x: &Tensor, expected: &[i64]) -> Result<()> {
        if x.size() != expected {
            return Err(Error::ShapeMismatch {
                what: what.into(),
                expected: expected.iter().map(|&d| d as usize).collect(),
                got: x.size().iter().map(|&d| d.max(0) as usize).collect(),
            });
        }
        Ok(())
    }

    fn convolution(
        &self,
        weight: &Tensor,
        x: &Tensor,
        transposed: bool,
        padding: &[i64],
        output_padding: &[i64],
    ) -> Result<Tensor> {
        let g = &self.geometry;
        x.f_convolution(
            weight,
            None::<&Tensor>,
            &g.stride[..],
            padding,
            &g.dilation[..],
            transposed,
            output_padding,
            g.groups,
        )
        .map_err(tch_err("convolution"))
    }

    /// `A x` with `weight` (of [`ConvMap::weight_shape`]) for `x` of [`ConvMap::input_shape`],
    /// in the dtype of `weight` and `x` as given (no conversion), differentiable when they
    /// require grad.
    pub fn apply(&self, weight: &Tensor, x: &Tensor) -> Result<Tensor> {
        Self::check_shape("the operator's input", x, &self.input_shape)?;
        Self::check_shape("the operator's weight", weight, &self.weight_shape)?;
        let g = &self.geometry;
        if g.transposed {
            return self.convolution(weight, x, true, &g.padding, &g.output_padding);
        }
        if g.circular {
            let pad: Vec<i64> = g.padding.iter().rev().flat_map(|&p| [p, p]).collect();
            let padded = PaddingMode::Circular.f_pad(x, &pad).map_err(tch_err("pad"))?;
            return self.convolution(weight, &padded, false, &vec![0; self.spatial()], &vec![0; self.spatial()]);
        }
        self.convolution(weight, x, false, &g.padding, &vec![0; self.spatial()])
    }

    /// `Aᵀ y` with `weight` for `y` of [`ConvMap::output_shape`], in the dtype given (as
    /// [`ConvMap::apply`]): the transposed convolution with the adjoint's output padding
    /// (Conv), or the convolution cut to the input size (ConvTranspose); `⟨A x, y⟩ = ⟨x, Aᵀ y⟩`.
    pub fn adjoint(&self, weight: &Tensor, y: &Tensor) -> Result<Tensor> {
        Self::check_shape("the adjoint's input", y, &self.output_shape)?;
        Self::check_shape("the operator's weight", weight, &self.weight_shape)?;
        let g = &self.geometry;
        let n = self.spatial();
        if g.transposed {
            let mut x = self.convolution(weight, y, false, &g.padding, &vec![0; n])?;
            for i in 0..n {
                x = x.f_narrow(2 + i as i64, 0, self.input_shape[2 + i]).map_err(tch_err("narrow"))?;
            }
            return Ok(x);
        }
        if !g.circular {
            return self.convolution(weight, y, true, &g.padding, &self.adjoint_output_padding);
        }
        // circular: conv_transpose onto the padded size, then fold the wrapped borders back.
        let mut z = self.convolution(weight, y, true, &vec![0; n], &self.adjoint_output_padding)?;
        for i in 0..n {
            let (size, p) = (self.input_shape[2 + i], g.padding[i]);
            let index: Vec<i64> = (0..size + 2 * p).map(|j| (j - p).rem_euclid(size)).collect();
            let index = Tensor::from_slice(&index).to_device(z.device());
            let mut shape = z.size();
            shape[2 + i] = size;
            let zeros = Tensor::f_zeros(&shape, (z.kind(), z.device())).map_err(tch_err("zeros"))?;
            z = zeros.f_index_add(2 + i as i64, &index, &z).map_err(tch_err("index_add"))?;
        }
        Ok(z)
    }
}

/// A layer whose convolution (or matrix product) is a [`ConvOperator`].
pub trait AsOperator: WeightedLayer {
    /// The operator of this layer's geometry with `weight` in place of its own (e.g. the
    /// effective weight of a normalized layer, [`crate::layers::Normalized::weight_t`]) on one
    /// input of spatial size `input_size` (Linear: `[]` or `[in_features]`).
    fn operator_with_weight(&self, weight: &Tensor, input_size: &[i64]) -> Result<ConvOperator>;

    /// The operator of this layer's own weight ([`AsOperator::operator_with_weight`]).
    fn operator(&self, input_size: &[i64]) -> Result<ConvOperator> {
        self.operator_with_weight(self.weight(), input_size)
    }

    /// PyTorch's `spectral_norm` dim for this layer ([`WeightedLayer::default_spectral_norm_dim`]).
    fn reshaped_dim(&self) -> i64 {
        self.default_spectral_norm_dim()
    }
}

impl<const N: usize> AsOperator for Conv<N> {
    /// Errors: reflect and replicate padding modes ([`Error::Unsupported`]), and those of
    /// [`ConvOperator::new`].
    fn operator_with_weight(&self, weight: &Tensor, input_size: &[i64]) -> Result<ConvOperator> {
        let circular = match self.options.padding_mode {
            PaddingMode::Zeros => false,
            PaddingMode::Circular => true,
            PaddingMode::Reflect | PaddingMode::Replicate => {
                return Err(Error::Unsupported {
                    what: "operator norm with padding_mode reflect or replicate".into(),
                    reason: "only zeros and circular padding are implemented".into(),
                })
            }
        };
        let geometry = ConvGeometry {
            transposed: false,
            stride: self.options.stride.to_vec(),
            padding: self.options.padding.to_vec(),
            dilation: self.options.dilation.to_vec(),
            output_padding: vec![0; N],
            groups: self.options.groups,
            circular,
        };
        ConvOperator::new(weight, geometry, input_size)
    }
}

impl<const N: usize> AsOperator for ConvTranspose<N> {
    fn operator_with_weight(&self, weight: &Tensor, input_size: &[i64]) -> Result<ConvOperator> {
        let geometry = ConvGeometry {
            transposed: true,
            stride: self.options.stride.to_vec(),
            padding: self.options.padding.to_vec(),
            dilation: self.options.dilation.to_vec(),
            output_padding: self.options.output_padding.to_vec(),
            groups: self.options.groups,
            circular: false,
        };
        ConvOperator::new(weight, geometry, input_size)
    }
}

impl AsOperator for tch::nn::Linear {
    /// `W x` as a 1-d convolution with kernel 1 on length 1; `input_size` is `[]` or
    /// `[in_features]`.
    fn operator_with_weight(&self, weight: &Tensor, input_size: &[i64]) -> Result<ConvOperator> {
        let in_features = weight.size().get(1).copied().unwrap_or(-1);
        if !(input_size.is_empty() || input_size == [in_features]) {
            return Err(Error::invalid(
                "input_size",
                tensor_list(input_size),
                format!("[] or [{in_features}] (in_features) for a Linear"),
            ));
        }
        let weight = weight.f_unsqueeze(-1).map_err(tch_err("unsqueeze"))?;
        let geometry = ConvGeometry {
            transposed: false,
            stride: vec![1],
            padding: vec![0],
            dilation: vec![1],
            output_padding: vec![0],
            groups: 1,
            circular: false,
        };
        ConvOperator::new(&weight, geometry, &[1])
    }
}

/// Options of [`operator_norm`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OperatorNormOptions {
    /// Stop when `bound ≤ tolerance · σ` (relative; `0` runs `max_iterations`). Default `1e-6`.
    pub tolerance: f64,
    /// The most iterations (at least 1). Default 10,000.
    pub max_iterations: u64,
    /// Seed of the start vector (splitmix64, uniform in `[-1, 1)`). Default 0.
    pub seed: u64,
}

impl Default for OperatorNormOptions {
    fn default() -> Self {
        OperatorNormOptions { tolerance: 1e-6, max_iterations: 10_000, seed: 0 }
    }
}

/// What [`operator_norm`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OperatorNorm {
    /// `σ = ‖A v‖` for the last unit `v`: a lower bound of the operator norm.
    pub sigma: f64,
    /// Iterations run (each one `A` and one `Aᵀ`).
    pub iterations: u64,
    /// `‖Aᵀ u − σ v‖ / √2`: some singular value of `A` lies within `bound` of `sigma`.
    pub bound: f64,
    /// Whether `bound ≤ tolerance · sigma` was reached.
    pub converged: bool,
}

/// splitmix64's sequence from `seed`, mapped to `[-1, 1)`.
fn start_vector(seed: u64, len: usize) -> Vec<f64> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn norm2(t: &Tensor) -> Result<f64> {
    let n = t.f_square().and_then(|s| s.f_sum(Kind::Double)).map_err(tch_err("sum"))?;
    Ok(f64::try_from(&n).map_err(tch_err("item"))?.sqrt())
}

/// Power iteration on `op` to `options.tolerance` (see the [module docs](self) for the
/// iteration and why `bound` bounds the error).
///
/// Errors: a negative or non-finite tolerance, `max_iterations == 0` ([`Error::InvalidArgument`]);
/// the start vector in the null space of a nonzero operator ([`Error::Unsupported`]; pass another seed).
/// A zero weight gives `sigma = 0`, `bound = 0`.
pub fn operator_norm(op: &ConvOperator, options: OperatorNormOptions) -> Result<OperatorNorm> {
    power_iteration(op, options).map(|(norm, _)| norm)
}

/// The last iterates of [`operator_norm`]'s power iteration, in float64.
#[derive(Debug)]
pub(crate) struct SingularPair {
    /// `u = A v / σ`, of [`ConvOperator::output_shape`] (zeros for a zero weight).
    pub u: Tensor,
    /// The unit `v` of the last iteration, of [`ConvOperator::input_shape`].
    pub v: Tensor,
}

/// [`operator_norm`], also returning the last `u`, `v` (`A v = σ u`).
pub(crate) fn power_iteration(op: &ConvOperator, options: OperatorNormOptions) -> Result<(OperatorNorm, SingularPair)> {
    if !(options.tolerance.is_finite() && options.tolerance >= 0.0) {
        return Err(Error::invalid("tolerance", options.tolerance, "a finite number >= 0"));
    }
    if options.max_iterations == 0 {
        return Err(Error::invalid("max_iterations", 0, "at least 1"));
    }
    tch::no_grad(|| {
        let device = op.weight.device();
        let numel: i64 = op.input_shape().iter().product();
        let start = start_vector(options.seed, numel as usize);
        let mut v =
            Tensor::from_slice(&start).to_device(device).f_reshape(op.input_shape()).map_err(tch_err("reshape"))?;
        v = v.f_div_scalar(norm2(&v)?).map_err(tch_err("div"))?;
        let mut result = OperatorNorm { sigma: 0.0, iterations: 0, bound: f64::INFINITY, converged: false };
        let mut pair = None;
        for iteration in 1..=options.max_iterations {
            let av = op.apply(&v)?;
            let sigma = norm2(&av)?;
            if sigma == 0.0 {
                if norm2(&op.weight)? == 0.0 {
                    let norm = OperatorNorm { sigma: 0.0, iterations: iteration, bound: 0.0, converged: true };
                    return Ok((norm, SingularPair { u: av, v }));
                }
                return Err(Error::Unsupported {
                    what: format!("operator norm from seed {}", options.seed),
                    reason: "the iterate fell into the operator's null space; pass another seed".into(),
                });
            }
            let u = av.f_div_scalar(sigma).map_err(tch_err("div"))?;
            let w = op.adjoint(&u)?;
            let residual = w.f_sub(&v.f_mul_scalar(sigma).map_err(tch_err("mul"))?).map_err(tch_err("sub"))?;
            let bound = norm2(&residual)? / std::f64::consts::SQRT_2;
            let converged = bound <= options.tolerance * sigma;
            result = OperatorNorm { sigma, iterations: iteration, bound, converged };
            let next = w.f_div_scalar(norm2(&w)?).map_err(tch_err("div"))?;
            pair = Some(SingularPair { u, v: std::mem::replace(&mut v, next) });
            if converged {
                break;
            }
        }
        let pair = pair.ok_or_else(|| Error::invalid("max_iterations", 0, "at least 1"))?;
        Ok((result, pair))
    })
}

/// The operator norm of `layer`'s own weight on inputs of spatial size `input_size`
/// ([`AsOperator::operator`], then [`operator_norm`]).
pub fn layer_operator_norm<L: AsOperator>(
    layer: &L,
    input_size: &[i64],
    options: OperatorNormOptions,
) -> Result<OperatorNorm> {
    operator_norm(&layer.operator(input_size)?, options)
}

/// The largest singular value of `weight` reshaped as PyTorch's `spectral_norm` reshapes it
/// (`dim` moved first, then `[size(dim), -1]`), in float64 (`torch.linalg.matrix_norm(·, 2)`): the σ
/// PyTorch's power iteration converges to.
///
/// Errors: a weight of rank 0 or a `dim` outside `[0, rank)` ([`Error::DimOutOfRange`]).
pub fn reshaped_sigma(weight: &Tensor, dim: i64) -> Result<f64> {
    let rank = weight.dim();
    if rank == 0 || dim < 0 || dim >= rank as i64 {
        return Err(Error::DimOutOfRange { dim, rank, expected: format!("[0, {rank})") });
    }
    tch::no_grad(|| {
        let w = weight.f_to_kind(Kind::Double).map_err(tch_err("to_kind"))?;
        let w = if dim == 0 { w } else { w.f_movedim(&[dim][..], &[0][..]).map_err(tch_err("movedim"))? };
        let rows = w.size()[0];
        let mat = w.f_reshape([rows, -1]).map_err(tch_err("reshape"))?;
        if mat.numel() == 0 {
            return Ok(0.0);
        }
        // ord=2 over both dims: torch.linalg.matrix_norm(mat, 2), the largest singular value.
        let max = mat.f_linalg_norm(2.0, &[0i64, 1][..], false, None::<Kind>).map_err(tch_err("linalg_norm"))?;
        f64::try_from(&max).map_err(tch_err("item"))
    })
}
