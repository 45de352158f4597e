//! A tiny pure-Rust reference backend: float32 tensors on the host, no libtorch.
//!
//! It exists so that norm-core's algorithms and its [`crate::conformance`] suite run
//! without libtorch. Each op implements the formula of the ATen op it stands for,
//! element by element (`lerp` with ATen's two-sided formula, reductions accumulated in
//! f64), so results agree with PyTorch up to rounding but are **not** bit-exact.
//! Gradients are not computed: a test sets them with [`AutodiffBackend::set_grad`].

use crate::backend::{AutodiffBackend, Backend};
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

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
            return Err(Error::invalid("data", format!("{} values", data.len()), format!("{numel} values for shape {shape:?}")));
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
                return Err(Error::ShapeMismatch { what: "in-place operand".into(), expected: self.shape.clone(), got: o.shape.clone() });
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
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat(1).take(rank - s.len()).chain(s.iter().copied()).collect() };
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
        let padded: Vec<usize> = std::iter::repeat(1).take(out_shape.len() - s.len()).chain(s.iter().copied()).collect();
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
            return Err(Error::DimOutOfRange { dim, rank: v.shape.len(), expected: format!("-1 or an axis in [{}, {}]", -rank, rank - 1) });
        }
        let axis = axis as usize;
        let inner: usize = v.shape[axis + 1..].iter().product();
        let size = v.shape[axis];
        let outer: usize = v.shape[..axis].iter().product();
        let norms = (0..size)
            .map(|k| l2(&mut (0..outer).flat_map(|o| (0..inner).map(move |i| (o * size + k) * inner + i)).map(|idx| values[idx])))
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
}
