//! Adam's scalar-lambda path (`csrc/adam_scalar_lambdas.h`, [`norm_tch::backend::AdamScalarLambdas`])
//! must give exactly the bits of the ATen calls it replaces, for every option, both lerp
//! branches (beta1 above and below 0.5), float32 and float64, values of every magnitude
//! (subnormal gradients, squares that overflow) and non-finite values; and it must really run
//! where its probe passed. The switch is process-wide, so this file is one test in its own
//! binary: the same update is made with the path on, then off, from the same state, and the
//! results compared bit for bit.

use norm_core::optim::{AdamConfig, AdamUpdate};
use norm_tch::backend::{adam_scalar_lambdas, adam_update_packed, set_adam_scalar_lambdas};
use norm_tch::TchBackend;
use norm_test_support::f64_bits;
use tch::{Device, Kind, Tensor};

/// Deterministic values of both signs over `min_exp..=max_exp` decades (xorshift64).
struct Values(u64);

impl Values {
    fn next(&mut self, min_exp: i32, max_exp: i32) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let mantissa = 1.0 + (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        let span = (max_exp - min_exp + 1) as u64;
        let exponent = min_exp + ((self.0 >> 3) % span) as i32;
        let x = mantissa * 10f64.powi(exponent);
        if self.0 & 1 == 1 {
            -x
        } else {
            x
        }
    }

    fn tensor(&mut self, shape: &[i64], kind: Kind, min_exp: i32, max_exp: i32) -> Tensor {
        let n: i64 = shape.iter().product();
        let values: Vec<f64> = (0..n).map(|_| self.next(min_exp, max_exp)).collect();
        Tensor::from_slice(&values).reshape(shape).to_kind(kind)
    }
}

/// The Adam state of a set of parameters, which can be copied to run one update two ways.
struct State {
    params: Vec<Tensor>,
    exp_avgs: Vec<Tensor>,
    exp_avg_sqs: Vec<Tensor>,
    maxes: Vec<Tensor>,
}

impl State {
    fn copy(&self) -> State {
        let copy = |ts: &Vec<Tensor>| ts.iter().map(Tensor::copy).collect();
        State {
            params: copy(&self.params),
            exp_avgs: copy(&self.exp_avgs),
            exp_avg_sqs: copy(&self.exp_avg_sqs),
            maxes: copy(&self.maxes),
        }
    }

    fn update(&mut self, config: &AdamConfig, step: f32, grads: &[Tensor]) -> usize {
        let mut maxes = self.maxes.iter_mut();
        let updates: Vec<AdamUpdate<'_, TchBackend>> = self
            .params
            .iter_mut()
            .zip(self.exp_avgs.iter_mut())
            .zip(self.exp_avg_sqs.iter_mut())
            .zip(grads)
            .map(|(((param, exp_avg), exp_avg_sq), grad)| AdamUpdate {
                step,
                param,
                grad: grad.copy(),
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq: maxes.next().filter(|_| config.amsgrad),
            })
            .collect();
        adam_update_packed(config, updates).unwrap()
    }

    fn bits(&self) -> Vec<Vec<u64>> {
        [&self.params, &self.exp_avgs, &self.exp_avg_sqs, &self.maxes].into_iter().flatten().map(f64_bits).collect()
    }
}

/// A parameter set: its dtype, its parameters' shapes (under 64 bytes together, or not) and
/// the decades of its gradients' values.
type Case = (Kind, &'static [&'static [i64]], (i32, i32));

fn configs() -> Vec<AdamConfig> {
    let mut configs = norm_core::conformance::adam_test_configs();
    // beta1 at or above 0.5 takes lerp's other branch (weight 1 - beta1 under 0.5); SN-GAN's (0, 0.9) has weight 1.
    configs.push(AdamConfig { betas: (0.0, 0.9), ..AdamConfig::with_lr(2e-4) });
    configs.push(AdamConfig { betas: (0.5, 0.999), weight_decay: 0.3, ..AdamConfig::with_lr(1e-3) });
    configs.push(AdamConfig {
        betas: (0.3, 0.99),
        weight_decay: 1e-2,
        decoupled_weight_decay: true,
        ..AdamConfig::with_lr(5e-3)
    });
    configs
}

#[test]
fn scalar_lambdas_give_the_bits_of_the_aten_calls_and_run() {
    let probed = adam_scalar_lambdas().unwrap();
    assert!(probed.enabled, "the path is on by default: {probed:?}");
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipping: the scalar-lambda path applies on x86-64 only (ATen's vector width); {probed:?}");
        return;
    }
    assert!(
        probed.float32.is_some() && probed.float64.is_some(),
        "the probe found no variant matching ATen's lambdas on this machine: {probed:?}"
    );
    let mut values = Values(0x5EED_1234_ABCD_0001);
    let cases: [Case; 6] = [
        (Kind::Float, &[&[3, 2], &[3, 1], &[3]], (-3, 2)),
        (Kind::Float, &[&[15]], (-30, 30)),
        (Kind::Float, &[&[2], &[], &[4, 2]], (-45, 19)),
        (Kind::Double, &[&[3], &[2, 2]], (-200, 200)),
        (Kind::Double, &[&[7]], (-3, 3)),
        (Kind::Float, &[&[8], &[9]], (-2, 2)),
    ];
    let mut scalar_steps = 0;
    for config in configs() {
        for (kind, shapes, (lo, hi)) in cases {
            let zeros = |shape: &&[i64]| Tensor::zeros(*shape, (kind, Device::Cpu));
            let mut state = State {
                params: shapes.iter().map(|s| values.tensor(s, kind, -2, 1)).collect(),
                exp_avgs: shapes.iter().map(zeros).collect(),
                exp_avg_sqs: shapes.iter().map(zeros).collect(),
                maxes: shapes.iter().map(zeros).collect(),
            };
            for step in 1..=12 {
                let grads: Vec<Tensor> = shapes.iter().map(|s| values.tensor(s, kind, lo, hi)).collect();
                if step == 7 {
                    // Non-finite values: the path declines and ATen's calls run.
                    let _ = grads[0].view(-1).narrow(0, 0, 1).fill_(f64::NAN);
                }
                if step == 9 {
                    let _ = grads[0].view(-1).narrow(0, 0, 1).fill_(f64::INFINITY);
                }
                let before = adam_scalar_lambdas().unwrap().updates;
                let mut through_lambdas = state.copy();
                let groups = through_lambdas.update(&config, step as f32, &grads);
                let taken = adam_scalar_lambdas().unwrap().updates - before;
                set_adam_scalar_lambdas(false).unwrap();
                let mut through_aten = state.copy();
                let aten_groups = through_aten.update(&config, step as f32, &grads);
                set_adam_scalar_lambdas(true).unwrap();
                let at = format!("{config:?} {kind:?} {shapes:?} step {step}");
                assert_eq!(through_lambdas.bits(), through_aten.bits(), "{at}");
                assert_eq!(groups, aten_groups, "{at}: packed groups");
                if config.amsgrad {
                    assert_eq!(taken, 0, "{at}: AMSGrad runs through ATen");
                }
                scalar_steps += usize::from(taken > 0);
                state = through_aten;
            }
        }
    }
    // Steps 1 to 6 of every case with finite values and no AMSGrad run through the path (from
    // step 7 on the NaN stays in the state): at least 6 cases x 8 configurations x 2 steps.
    assert!(scalar_steps >= 8 * 12, "the scalar path ran in only {scalar_steps} updates");
    let after = adam_scalar_lambdas().unwrap();
    assert!(after.enabled && after.updates > probed.updates, "{after:?}");
}
