//! Train a weight-normed `nn.Linear` with PyTorch-exact Adam, as in PyTorch:
//!
//! ```python
//! torch.manual_seed(0)
//! layer = torch.nn.utils.weight_norm(torch.nn.Linear(4, 2))
//! opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
//! for _ in range(5):
//!     loss = layer(torch.randn(8, 4)).pow(2).mean()
//!     opt.zero_grad(); loss.backward(); opt.step()
//! ```
//!
//! Run with `cargo run --release -p norm-tch --example weight_norm_linear`.

use anyhow::Result;
use norm_core::optim::AdamConfig;
use norm_tch::layers::{linear, weight_norm, LinearConfig};
use norm_tch::optim::Adam;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    norm_tch::backend::set_num_threads(1)?;
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let layer = weight_norm(&vs, linear(&vs.root(), 4, 2, LinearConfig::default())?, Some(0))?;
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    println!("parameters: {names:?}");
    let mut opt = Adam::new(&vs, AdamConfig::with_lr(1e-2))?;
    for step in 1..=5 {
        let x = Tensor::f_randn([8, 4], (Kind::Float, Device::Cpu))?;
        let loss = layer.forward(&x).f_pow_tensor_scalar(2)?.f_mean(None::<Kind>)?;
        opt.zero_grad()?;
        loss.f_backward()?;
        opt.step()?;
        println!("step {step}: loss {:.6}", loss.double_value(&[]));
    }
    println!("weight_g = {:?}", Vec::<f32>::try_from(layer.weight_g().flatten(0, -1))?);
    Ok(())
}
