//! The JSON that the PyTorch twins of `norm_tch::models` write, and the bit-for-bit
//! comparison of a Rust run with it: `data/hifigan_block.py --io` ([`HifiganIo`]) and
//! `data/sn_discriminator.py train --out` ([`SnDiscriminatorRun`], [`compare_sn_run`]). The
//! examples `hifigan_generator` and `sn_discriminator` and `norm-tch/tests/examples.rs` read
//! them.

use crate::bits::Bits;
use anyhow::{bail, ensure, Result};
use norm_tch::models::hifigan::Config;
use norm_tch::models::sn_discriminator::TrainRun;
use serde::Deserialize;
use std::collections::BTreeMap;

/// [`Config`]'s JSON form (the `config` object of `data/hifigan_block.py`'s JSON), read
/// straight into the library type.
#[derive(Deserialize)]
#[serde(remote = "Config")]
struct ConfigJson {
    in_channels: i64,
    channels: i64,
    upsample_rates: Vec<i64>,
    resblock_kernel_sizes: Vec<i64>,
    dilations: Vec<i64>,
}

/// The JSON `data/hifigan_block.py --io` writes.
#[derive(Clone, Debug, Deserialize)]
pub struct HifiganIo {
    /// `torch.__version__`.
    pub torch: String,
    /// `torch.backends.cpu.get_cpu_capability()`.
    pub cpu_capability: String,
    /// The seed of the model and input.
    pub seed: u64,
    /// The sizes.
    #[serde(with = "ConfigJson")]
    pub config: Config,
    /// `model.state_dict().keys()`, in order.
    pub state_dict_keys: Vec<String>,
    /// The input.
    pub input: Bits,
    /// The eval output of the weight-normed model.
    pub output: Bits,
    /// With `--fold`: the output after `remove_weight_norm` on every layer.
    pub removed_output: Option<Bits>,
    /// With `--fold`: the state-dict keys after `remove_weight_norm`.
    pub removed_state_dict_keys: Option<Vec<String>>,
}

/// The JSON `data/sn_discriminator.py train --out` writes.
#[derive(Clone, Debug, Deserialize)]
pub struct SnDiscriminatorRun {
    /// `torch.__version__`.
    pub torch: String,
    /// `torch.backends.cpu.get_cpu_capability()`.
    pub cpu_capability: String,
    /// The seed.
    pub seed: u64,
    /// The number of steps.
    pub steps: usize,
    /// The batch size.
    pub batch: i64,
    /// Every step's loss.
    pub losses: Vec<Bits>,
    /// `model.state_dict().keys()` after training, in order.
    pub state_dict_keys: Vec<String>,
    /// The state dict after training.
    pub state_dict: BTreeMap<String, Bits>,
    /// The input of the eval forward.
    pub eval_input: Bits,
    /// The eval output.
    pub eval_output: Bits,
}

/// A loss (`loss.item()` of a 0-dim float32 tensor) as the scripts write it: shape `[]`.
pub fn loss_bits(loss: f32) -> Bits {
    Bits { shape: Vec::new(), f32_bits: vec![loss.to_bits()] }
}

/// Compares a Rust run with PyTorch's, bit for bit: every step's loss, the state dict's
/// keys and every entry, the eval input (the generator state after training) and the eval
/// output. Returns one line per comparison, `ok ...` or `DIFFERS ...`, and the number that
/// differ.
pub fn compare_sn_run(run: &TrainRun, torch: &SnDiscriminatorRun) -> Result<(Vec<String>, usize)> {
    let mut lines = Vec::new();
    let mut differing = 0;
    let mut check = |what: String, ours: &Bits, theirs: &Bits| {
        if ours == theirs {
            lines.push(format!("ok       {what}: bit-equal ({} values)", ours.f32_bits.len()));
        } else {
            differing += 1;
            let ulp = ours.max_ulp(theirs).map_or("shapes differ".to_string(), |u| format!("max {u} ULP"));
            lines.push(format!(
                "DIFFERS  {what}: {ulp}, {} of {} values differ",
                ours.count_differing(theirs),
                ours.f32_bits.len()
            ));
        }
    };
    if run.losses.len() != torch.losses.len() {
        bail!("{} Rust steps vs {} PyTorch steps", run.losses.len(), torch.losses.len());
    }
    for (i, (&ours, theirs)) in run.losses.iter().zip(&torch.losses).enumerate() {
        check(format!("loss of step {}", i + 1), &loss_bits(ours), theirs);
    }
    let ours = norm_tch::checkpoint::state_dict(&run.vs)?;
    let mut our_keys: Vec<&str> = ours.keys().collect();
    let mut their_keys: Vec<&str> = torch.state_dict_keys.iter().map(String::as_str).collect();
    our_keys.sort_unstable();
    their_keys.sort_unstable();
    ensure!(our_keys == their_keys, "state-dict keys differ: Rust {our_keys:?} vs PyTorch {their_keys:?}");
    for key in &torch.state_dict_keys {
        let Some(t) = ours.get(key) else { bail!("state_dict[{key}] is missing") };
        check(format!("state_dict[{key}]"), &Bits::of(t)?, &torch.state_dict[key]);
    }
    check("eval input (generator state after training)".into(), &Bits::of(&run.eval_input)?, &torch.eval_input);
    check("eval output".into(), &Bits::of(&run.eval_output)?, &torch.eval_output);
    Ok((lines, differing))
}
