//! A tiny pure-Rust reference backend: float32 tensors on the host, no libtorch.
//!
//! It exists so that norm-core's algorithms and its [`crate::conformance`] suite run
//! without libtorch. Each op implements the formula of the ATen op it stands for,
//! element by element (`lerp` with ATen's two-sided formula, reductions accumulated in
//! f64), so results agree with PyTorch up to rounding but are **not** bit-exact.
//! Gradients are not computed: a test sets them with [`AutodiffBackend::set_grad`].
//! Views (`permute`, `reshape`, `t`, `expand_as`) are copies here: the algorithms never
//! write through a view. `normal` draws from a process-wide Box–Muller stream over
//! [`crate::random::PyRandom`] (seed it with [`RefBackend::manual_seed`]); it is not
//! PyTorch's generator.

use crate::backend::{AutodiffBackend, Backend};
use crate::error::{Error, Result};
use crate::random::PyRandom;
use std::sync::{Arc, Mutex};

static GENERATOR: Mutex<Option<PyRandom>> = Mutex::new(None);

impl RefBackend {
    /// Seeds the reference backend's normal draws.
    pub fn manual_seed(seed: u64) {
        *GENERATOR.lock().unwrap_or_else(|e| e.into_inner()) = Some(PyRandom::new(seed));
    }

    fn standard_normals(n: usize) -> Vec<f32> {
        let mut guard = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
        let rng = guard.get_or_insert_with(|| PyRandom::new(0));
        (0..n)
            .map(|_| {
                let u1 = 1.0 - rng.random();
                let u2 = rng.random();
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
            })
            .collect()
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

fn axis(dim: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if dim < 0 { dim + r } else { dim };
    if (0..r.max(1)).contains(&a) {
        Ok(a as usize)
    } else {
        Err(Error::DimOutOfRange { dim, rank, expected: format!("a dim in [{}, {}]", -r, r - 1) })
    }
}

/// The reference backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefBackend;

/// The reference backend's only device, the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefDevice;

/// A float32 tensor handle; clones made with [`Backend::shallow_clone`] share storage.
#[derive(Debug)]
pub struct RefTensor {
    shape: Vec<usize>,
    data: Arc<Mutex<Vec<f32>>>,
    grad: Arc<Mutex<Option<RefTensor>>>,
}

impl RefTensor {
    /// A new tensor from row-major data; errors if `data.len()` does not match `shape`.
    pub fn new(data: Vec<f32>, shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::invalid(
                "data",
                format!("{} values", data.len()),
                format!("{numel} values for shape {shape:?}"),
            ));
        }
        Ok(RefTensor { shape: shape.to_vec(), data: Arc::new(Mutex::new(data)), grad: Arc::new(Mutex::new(None)) })
    }

    /// Sets `.grad` (what `backward()` would have accumulated).
    pub fn set_grad(&self, grad: RefTensor) -> Result<()> {
        if grad.shape != self.shape {
            return Err(Error::ShapeMismatch { what: "grad".into(), expected: self.shape.clone(), got: grad.shape });
        }
        *self.grad.lock().expect("grad lock") = Some(grad);
        Ok(())
    }

    fn values(&self) -> Vec<f32> {
        self.data.lock().expect("data lock").clone()
    }

    fn with_values(&self, values: Vec<f32>) -> Self {
        RefTensor { shape: self.shape.clone(), data: Arc::new(Mutex::new(values)), grad: Arc::new(Mutex::new(None)) }
    }

    fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        self.with_values(self.values().into_iter().map(f).collect())
    }

    fn update(&mut self, others: &[&RefTensor], f: impl Fn(f32, &[f32]) -> f32) -> Result<()> {
        for o in others {
            if o.shape != self.shape {
                return Err(Error::ShapeMismatch {
                    what: "in-place operand".into(),
                    expected: self.shape.clone(),
                    got: o.shape.clone(),
                });
            }
        }
        let other_values: Vec<Vec<f32>> = others.iter().map(|o| o.values()).collect();
        let mut data = self.data.lock().expect("data lock");
        let mut args = vec![0.0f32; others.len()];
        for (i, x) in data.iter_mut().enumerate() {
            for (a, o) in args.iter_mut().zip(&other_values) {
                *a = o[i];
            }
            *x = f(*x, &args);
        }
        Ok(())
    }
}

fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
    let (pa, pb) = (pad(a), pad(b));
    pa.iter()
        .zip(&pb)
        .map(|(&x, &y)| match (x, y) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::ShapeMismatch { what: "broadcast operands".into(), expected: a.to_vec(), got: b.to_vec() }),
        })
        .collect()
}

/// Elementwise `f(a, b)` with NumPy broadcasting.
fn broadcast_binary(a: &RefTensor, b: &RefTensor, f: impl Fn(f32, f32) -> f32) -> Result<RefTensor> {
    let out_shape = broadcast_shape(&a.shape, &b.shape)?;
    let strides_for = |s: &[usize]| -> Vec<usize> {
        let padded: Vec<usize> = std::iter::repeat_n(1, out_shape.len() - s.len()).chain(s.iter().copied()).collect();
        let mut strides = vec![0; padded.len()];
        let mut acc = 1;
        for d in (0..padded.len()).rev() {
            strides[d] = if padded[d] == 1 { 0 } else { acc };
            acc *= padded[d];
        }
        strides
    };
    let (sa, sb) = (strides_for(&a.shape), strides_for(&b.shape));
    let (va, vb) = (a.values(), b.values());
    let numel: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; out_shape.len()];
    for _ in 0..numel {
        let ia: usize = index.iter().zip(&sa).map(|(i, s)| i * s).sum();
        let ib: usize = index.iter().zip(&sb).map(|(i, s)| i * s).sum();
        out.push(f(va[ia], vb[ib]));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < out_shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    RefTensor::new(out, &out_shape)
}

impl Backend for RefBackend {
    type Device = RefDevice;
    type Tensor = RefTensor;

    fn name() -> &'static str {
        "reference"
    }
    fn shallow_clone(t: &RefTensor) -> RefTensor {
        RefTensor { shape: t.shape.clone(), data: Arc::clone(&t.data), grad: Arc::clone(&t.grad) }
    }
    fn device(_: &RefTensor) -> RefDevice {
        RefDevice
    }
    fn shape(t: &RefTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn from_f32(data: &[f32], shape: &[usize], _: &RefDevice) -> Result<RefTensor> {
        RefTensor::new(data.to_vec(), shape)
    }
    fn to_f32_vec(t: &RefTensor) -> Result<Vec<f32>> {
        Ok(t.values())
    }
    fn deep_clone(t: &RefTensor) -> Result<RefTensor> {
        Ok(t.with_values(t.values()))
    }
    fn zeros_like(t: &RefTensor) -> Result<RefTensor> {
        Ok(t.map(|_| 0.0))
    }
    fn neg(t: &RefTensor) -> Result<RefTensor> {
        Ok(t.map(|x| -x))
    }
    fn sqrt(t: &RefTensor) -> Result<RefTensor> {
        Ok(t.map(f32::sqrt))
    }
    fn mul(a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        broadcast_binary(a, b, |x, y| x * y)
    }
    fn div(a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        broadcast_binary(a, b, |x, y| x / y)
    }
    fn div_scalar(t: &RefTensor, s: f64) -> Result<RefTensor> {
        let s = s as f32;
        Ok(t.map(|x| x / s))
    }
    fn add_scaled(t: &RefTensor, other: &RefTensor, alpha: f64) -> Result<RefTensor> {
        let alpha = alpha as f32;
        broadcast_binary(t, other, |x, y| y.mul_add(alpha, x))
    }
    fn add_scalar_(t: &mut RefTensor, s: f64) -> Result<()> {
        let s = s as f32;
        t.update(&[], |x, _| x + s)
    }
    fn mul_scalar_(t: &mut RefTensor, s: f64) -> Result<()> {
        let s = s as f32;
        t.update(&[], |x, _| x * s)
    }
    fn lerp_(t: &mut RefTensor, end: &RefTensor, weight: f64) -> Result<()> {
        let w = weight as f32;
        t.update(&[end], |x, e| if w.abs() < 0.5 { x + w * (e[0] - x) } else { e[0] - (e[0] - x) * (1.0 - w) })
    }
    fn addcmul_(t: &mut RefTensor, t1: &RefTensor, t2: &RefTensor, value: f64) -> Result<()> {
        let v = value as f32;
        t.update(&[t1, t2], |x, a| x + v * a[0] * a[1])
    }
    fn addcdiv_(t: &mut RefTensor, t1: &RefTensor, t2: &RefTensor, value: f64) -> Result<()> {
        let v = value as f32;
        t.update(&[t1, t2], |x, a| x + v * a[0] / a[1])
    }
    fn maximum_(t: &mut RefTensor, other: &RefTensor) -> Result<()> {
        t.update(&[other], |x, o| if x.is_nan() || o[0].is_nan() { f32::NAN } else { x.max(o[0]) })
    }
    fn permute(t: &RefTensor, dims: &[i64]) -> Result<RefTensor> {
        let rank = t.shape.len();
        let order: Vec<usize> = dims.iter().map(|&d| axis(d, rank)).collect::<Result<_>>()?;
        let mut seen = order.clone();
        seen.sort_unstable();
        seen.dedup();
        if order.len() != rank || seen.len() != rank {
            return Err(Error::invalid("dims", format!("{dims:?}"), format!("a permutation of the {rank} dims")));
        }
        let shape: Vec<usize> = order.iter().map(|&d| t.shape[d]).collect();
        let src_strides = strides(&t.shape);
        let values = t.values();
        let numel = values.len();
        let mut out = Vec::with_capacity(numel);
        let mut index = vec![0usize; rank];
        for _ in 0..numel {
            out.push(values[index.iter().zip(&order).map(|(i, &d)| i * src_strides[d]).sum::<usize>()]);
            for d in (0..rank).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        RefTensor::new(out, &shape)
    }
    fn reshape(t: &RefTensor, shape: &[i64]) -> Result<RefTensor> {
        let numel: usize = t.shape.iter().product();
        let known: i64 = shape.iter().filter(|&&d| d != -1).product();
        let resolved: Vec<usize> = shape
            .iter()
            .map(|&d| if d == -1 && known > 0 { numel / known as usize } else { d.max(0) as usize })
            .collect();
        if resolved.iter().product::<usize>() != numel {
            return Err(Error::invalid("shape", format!("{shape:?}"), format!("a shape with {numel} elements")));
        }
        RefTensor::new(t.values(), &resolved)
    }
    fn flatten(t: &RefTensor, start_dim: i64, end_dim: i64) -> Result<RefTensor> {
        let rank = t.shape.len();
        let (s, e) = (axis(start_dim, rank)?, axis(end_dim, rank)?);
        let mut shape: Vec<i64> = t.shape[..s].iter().map(|&d| d as i64).collect();
        shape.push(t.shape[s..=e].iter().product::<usize>() as i64);
        shape.extend(t.shape[e + 1..].iter().map(|&d| d as i64));
        Self::reshape(t, &shape)
    }
    fn t(t: &RefTensor) -> Result<RefTensor> {
        if t.shape.len() != 2 {
            return Err(Error::invalid("t", format!("a tensor of shape {:?}", t.shape), "a matrix"));
        }
        Self::permute(t, &[1, 0])
    }
    fn expand_as(t: &RefTensor, other: &RefTensor) -> Result<RefTensor> {
        broadcast_binary(t, &other.map(|_| 0.0), |x, _| x)
    }
    fn clone_contiguous(t: &RefTensor) -> Result<RefTensor> {
        Ok(t.with_values(t.values()))
    }
    fn mv(mat: &RefTensor, vec: &RefTensor) -> Result<RefTensor> {
        let [rows, cols] = mat.shape[..] else {
            return Err(Error::invalid("mat", format!("shape {:?}", mat.shape), "a matrix"));
        };
        if vec.shape != [cols] {
            return Err(Error::ShapeMismatch {
                what: "mv vector".into(),
                expected: vec![cols],
                got: vec.shape.clone(),
            });
        }
        let (m, v) = (mat.values(), vec.values());
        let out =
            (0..rows).map(|r| (0..cols).map(|c| m[r * cols + c] as f64 * v[c] as f64).sum::<f64>() as f32).collect();
        RefTensor::new(out, &[rows])
    }
    fn dot(a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        if a.shape.len() != 1 || a.shape != b.shape {
            return Err(Error::ShapeMismatch {
                what: "dot operands".into(),
                expected: a.shape.clone(),
                got: b.shape.clone(),
            });
        }
        let sum = a.values().iter().zip(b.values()).map(|(&x, y)| x as f64 * y as f64).sum::<f64>();
        RefTensor::new(vec![sum as f32], &[])
    }
    fn vdot(a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        Self::dot(a, b)
    }
    fn vector_norm(t: &RefTensor, ord: f64, dims: &[i64], keepdim: bool) -> Result<RefTensor> {
        if ord != 2.0 || dims.len() != 1 {
            return Err(Error::invalid("ord", ord, "2 over one dim (the reference backend's only vector norm)"));
        }
        let rank = t.shape.len();
        let a = axis(dims[0], rank)?;
        // Move axis `a` last, then take the 2-norm of each contiguous run.
        let order: Vec<i64> = (0..rank).filter(|&d| d != a).chain(std::iter::once(a)).map(|d| d as i64).collect();
        let moved = Self::permute(t, &order)?.values();
        let len = t.shape[a];
        let others: usize = t.shape.iter().product::<usize>() / len.max(1);
        let out: Vec<f32> = if len == 0 {
            vec![0.0; others]
        } else {
            moved.chunks(len).map(|c| c.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt() as f32).collect()
        };
        let mut shape = t.shape.clone();
        if keepdim {
            shape[a] = 1;
        } else {
            shape.remove(a);
        }
        RefTensor::new(out, &shape)
    }
    fn clamp_min(t: &RefTensor, min: f64) -> Result<RefTensor> {
        let min = min as f32;
        Ok(t.map(|x| if x < min { min } else { x }))
    }
    fn clamp_min_(t: &mut RefTensor, min: f64) -> Result<()> {
        let min = min as f32;
        t.update(&[], |x, _| if x < min { min } else { x })
    }
    fn div_out(a: &RefTensor, b: &RefTensor, out: &mut RefTensor) -> Result<()> {
        let result = Self::div(a, b)?;
        if result.shape != out.shape {
            return Err(Error::ShapeMismatch {
                what: "div out".into(),
                expected: result.shape,
                got: out.shape.clone(),
            });
        }
        out.update(&[&result], |_, r| r[0])
    }
    fn normal(_like: &RefTensor, shape: &[usize], mean: f64, std: f64) -> Result<RefTensor> {
        let n = shape.iter().product();
        let values = RefBackend::standard_normals(n).into_iter().map(|z| (mean + std * z as f64) as f32).collect();
        RefTensor::new(values, shape)
    }
    fn norm_except_dim(v: &RefTensor, pow: i64, dim: i64) -> Result<RefTensor> {
        if pow != 2 {
            return Err(Error::invalid("pow", pow, "2 (the reference backend implements the 2-norm only)"));
        }
        let values = v.values();
        let l2 = |xs: &mut dyn Iterator<Item = f32>| xs.map(|x| (x as f64) * (x as f64)).sum::<f64>().sqrt() as f32;
        let rank = v.shape.len() as i64;
        if dim == -1 {
            return RefTensor::new(vec![l2(&mut values.iter().copied())], &[]);
        }
        let axis = if dim < 0 { dim + rank } else { dim };
        if !(0..rank).contains(&axis) {
            return Err(Error::DimOutOfRange {
                dim,
                rank: v.shape.len(),
                expected: format!("-1 or an axis in [{}, {}]", -rank, rank - 1),
            });
        }
        let axis = axis as usize;
        let inner: usize = v.shape[axis + 1..].iter().product();
        let size = v.shape[axis];
        let outer: usize = v.shape[..axis].iter().product();
        let norms = (0..size)
            .map(|k| {
                l2(&mut (0..outer)
                    .flat_map(|o| (0..inner).map(move |i| (o * size + k) * inner + i))
                    .map(|idx| values[idx]))
            })
            .collect();
        let mut shape = vec![1; v.shape.len()];
        shape[axis] = size;
        RefTensor::new(norms, &shape)
    }
}

impl AutodiffBackend for RefBackend {
    fn grad(t: &RefTensor) -> Option<RefTensor> {
        t.grad.lock().expect("grad lock").as_ref().map(RefBackend::shallow_clone)
    }
    fn set_grad(t: &RefTensor, grad: RefTensor) -> Result<()> {
        t.set_grad(grad)
    }
    fn clear_grad(t: &mut RefTensor) -> Result<()> {
        *t.grad.lock().expect("grad lock") = None;
        Ok(())
    }
    fn no_grad<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
    fn device_type(_: &RefTensor) -> String {
        "cpu".into()
    }
    fn dtype_name(_: &RefTensor) -> String {
        "torch.float32".into()
    }
    fn is_floating_point(_: &RefTensor) -> bool {
        true
    }
}
