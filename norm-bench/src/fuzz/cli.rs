//! Command lines for every subcommand (seed-loop, report, parity, compare, operator-norm,
//! convert) with extreme and garbage values: each starts from a
//! small valid command (one that finishes in about a second) and replaces, drops or repeats
//! a few of its flags; `report --config` files get a hostile value in one field.

use super::rng::Rng;
use super::Case;
use super::Family;
use serde_json::{json, Value};

/// Values any flag may be given.
const VALUES: [&str; 30] = [
    "",
    " ",
    "0",
    "1",
    "-1",
    "2",
    "7",
    "1000",
    "65536",
    "2147483648",
    "4294967296",
    "9223372036854775808",
    "18446744073709551616",
    "1e9",
    "1.5",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "+3",
    "abc",
    "１２",
    "1,2",
    ",,",
    "8,0",
    "8,-1",
    "64x64",
    "0x8",
    "99999999x99999999",
    "--",
];

/// Paths a file flag may be given (`{dir}` is the case's folder).
const PATHS: [&str; 7] = ["{dir}/missing/file", "{dir}", "/dev/null", "/dev/zero", "{dir}/garbage.bin", "/", ""];

fn value(rng: &mut Rng) -> String {
    if rng.one_in(12) {
        return "9".repeat(5000);
    }
    rng.pick(&VALUES).to_string()
}

fn path(rng: &mut Rng) -> String {
    rng.pick(&PATHS).to_string()
}

/// `args` without `flag` (and its value when `takes_value`).
fn without(args: &mut Vec<String>, flag: &str, takes_value: bool) {
    if let Some(i) = args.iter().position(|a| a == flag) {
        args.drain(i..(i + 1 + usize::from(takes_value)).min(args.len()));
    }
}

/// Replaces a few of `flags` (name, takes a value, takes a path) in `args`.
fn mutate_flags(args: &mut Vec<String>, flags: &[(&str, bool, bool)], rng: &mut Rng, what: &mut Vec<String>) {
    for _ in 0..1 + rng.below(3) {
        let &(flag, takes_value, is_path) = rng.pick(flags);
        match rng.below(6) {
            0 => {
                without(args, flag, takes_value);
                what.push(format!("drop {flag}"));
            }
            1 => {
                args.push("--fuzz-unknown".into());
                what.push("unknown flag".into());
            }
            _ => {
                without(args, flag, takes_value);
                args.push(flag.into());
                if takes_value {
                    let v = if is_path { path(rng) } else { value(rng) };
                    what.push(format!("{flag} {:.20}", v));
                    args.push(v);
                } else {
                    what.push(flag.into());
                }
            }
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn garbage_file() -> (String, Vec<u8>) {
    ("garbage.bin".into(), b"PK\x03\x04not really a zip\x00\xff".to_vec())
}

fn seed_loop(rng: &mut Rng, what: &mut Vec<String>) -> Case {
    let mut args = strings(&["seed-loop", "--example", "weight-norm", "--steps", "2", "--json"]);
    mutate_flags(
        &mut args,
        &[("--example", true, false), ("--seed", true, false), ("--steps", true, false), ("--json", false, false)],
        rng,
        what,
    );
    // A valid but large step count is no hostile input, only slow work (65536 steps of the
    // weight-norm program are about 200000 training steps, past the per-case timeout on a
    // busy machine): such a count (up to the 1_000_000 that `seed-loop --steps` accepts) is
    // lowered to 1000, which still runs the whole program.
    if let Some(i) = args.iter().position(|a| a == "--steps") {
        if let Some(steps) = args.get_mut(i + 1) {
            if steps.parse::<u64>().is_ok_and(|n| (1001..=1_000_000).contains(&n)) {
                what.push(format!("--steps {steps} lowered to 1000 (valid, only slow)"));
                *steps = "1000".to_string();
            }
        }
    }
    Case::command(Family::Cli, args)
}

/// A report config that runs in about a second, with one field made hostile.
fn report_config(rng: &mut Rng, what: &mut Vec<String>) -> Vec<u8> {
    let mut config = json!({
        "ops": ["copy"], "sizes": [8], "rect_shapes": [], "extra_dtypes": [], "devices": ["cpu"],
        "convergence": false, "loss_curves": false, "plots": false, "pytorch": false,
        "sampling": {"warmup_min": 0, "warmup_ms": 0, "min_samples": 1, "max_samples": 1, "budget_ms": 0, "rounds": 1, "min_sample_us": 0}
    });
    let fields = [
        "sizes",
        "copy_sizes",
        "rect_shapes",
        "dtype_shapes",
        "n_power_iterations",
        "power_iteration_counts",
        "threads",
        "convergence_shapes",
        "convergence_iterations",
        "seed_loop_steps",
        "spectral_train_steps",
        "ops",
        "sampling.warmup_min",
        "sampling.warmup_ms",
        "sampling.min_samples",
        "sampling.max_samples",
        "sampling.budget_ms",
        "sampling.rounds",
        "sampling.min_sample_us",
    ];
    let field = *rng.pick(&fields);
    let hostile: Value = match rng.below(12) {
        0 => json!(-1),
        1 => json!(0),
        2 => json!(1u64 << 31),
        3 => json!(1u64 << 32),
        4 => json!(u64::MAX),
        5 => json!(1e39),
        6 => json!(1.5),
        7 => json!("8"),
        8 => Value::Null,
        9 => json!(1_000_000),
        10 => json!(100_000),
        _ => json!(["100000x100000"]),
    };
    let hostile = if ["sizes", "copy_sizes", "power_iteration_counts", "convergence_iterations"].contains(&field)
        && rng.one_in(2)
    {
        json!([hostile])
    } else if field.ends_with("shapes") && rng.one_in(2) {
        json!([rng.pick(&["100000x100000", "0x8", "8x8x8", "4294967296x1", "65536x65536", "8192x8192"]).to_string()])
    } else {
        hostile
    };
    what.push(format!("config {field}={:.40}", hostile.to_string()));
    match field.split_once('.') {
        Some((outer, inner)) => config[outer][inner] = hostile,
        None => config[field] = hostile,
    }
    config.to_string().into_bytes()
}

fn report(rng: &mut Rng, what: &mut Vec<String>) -> Case {
    if rng.one_in(3) {
        let config = report_config(rng, what);
        let args = strings(&["report", "--config", "{dir}/config.json", "--out", "{dir}/reports", "--run", "r"]);
        let mut case = Case::command(Family::Cli, args);
        case.files.push(("config.json".into(), config));
        case.check_leftovers = false;
        return case;
    }
    let mut args = strings(&[
        "report",
        "--out",
        "{dir}/reports",
        "--run",
        "r",
        "--no-pytorch",
        "--no-plots",
        "--no-convergence",
        "--no-loss",
        "--ops",
        "copy",
        "--sizes",
        "8",
        "--samples",
        "1",
        "--warmup",
        "0",
        "--rect-shapes",
        "",
        "--dtypes",
        "",
        "--devices",
        "cpu",
    ]);
    let flags = [
        ("--ops", true, false),
        ("--sizes", true, false),
        ("--rect-shapes", true, false),
        ("--dtypes", true, false),
        ("--devices", true, false),
        ("--n-power-iterations", true, false),
        ("--threads", true, false),
        ("--warmup", true, false),
        ("--samples", true, false),
        ("--min-sample-us", true, false),
        ("--rounds", true, false),
        ("--budget-ms", true, false),
        ("--min-samples", true, false),
        ("--max-samples", true, false),
        ("--settle-width", true, false),
        ("--extra-rounds", true, false),
        ("--extra-rounds-budget-s", true, false),
        ("--run", true, false),
        ("--config", true, true),
        ("--python", true, true),
    ];
    mutate_flags(&mut args, &flags, rng, what);
    let mut case = Case::command(Family::Cli, args);
    case.files.push(garbage_file());
    case.check_leftovers = false;
    case
}

fn parity(rng: &mut Rng, spec_cases: &[Value], what: &mut Vec<String>) -> Case {
    let small: Vec<&Value> = spec_cases.iter().filter(|c| c["steps"].as_u64().is_some_and(|s| s <= 2)).collect();
    let spec = json!({ "cases": [rng.pick(&small)] }).to_string().into_bytes();
    let mut args = strings(&["parity", "--spec", "{dir}/spec.json", "--json"]);
    let flags = [
        ("--spec", true, true),
        ("--json", false, false),
        ("--reference", true, true),
        ("--live", false, false),
        ("--python", true, true),
        ("--differences-only", false, false),
    ];
    mutate_flags(&mut args, &flags, rng, what);
    // --live runs data/parity.py with the real Python only when --python is not given: the
    // fuzzer gives a broken one instead.
    if args.iter().any(|a| a == "--live") && !args.iter().any(|a| a == "--python") {
        args.extend(["--python".into(), rng.pick(&["/bin/false", "/bin/true", "{dir}/missing"]).to_string()]);
    }
    let mut case = Case::command(Family::Cli, args);
    case.input = Some(("spec.json".into(), spec));
    case.files.push(garbage_file());
    case
}

fn convert(rng: &mut Rng, pt: &[(String, Vec<u8>)], what: &mut Vec<String>) -> Case {
    let (name, bytes) = rng.pick(pt).clone();
    what.push(name);
    let mut args = strings(&["convert", "{dir}/in.pt", "{dir}/out.pt", "--to", "parametrizations"]);
    let mut output = Some("out.pt".to_string());
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 => {
                let to = rng.pick(&["hooks", "folded", "parametrizations", "x", "", "HOOKS"]).to_string();
                what.push(format!("--to {to}"));
                args[4] = to;
            }
            1 | 2 => {
                let flag = *rng.pick(&["--spectral-dim", "--weight-norm-dim"]);
                let v = rng
                    .pick(&[
                        "0",
                        "-1",
                        "1",
                        "5",
                        "64",
                        "-65",
                        "99",
                        "2147483648",
                        "9223372036854775808",
                        "a",
                        "0=1",
                        "=1",
                        "x=",
                        "0=99999999999999999999",
                        "1=-9223372036854775808",
                        "0.=0",
                        "1.5",
                    ])
                    .to_string();
                what.push(format!("{flag} {v}"));
                args.extend([flag.to_string(), v]);
            }
            3 => {
                let out = rng
                    .pick(&[
                        "{dir}/out.safetensors",
                        "{dir}/out.txt",
                        "{dir}/out",
                        "{dir}/missing/out.pt",
                        "{dir}",
                        "/dev/null",
                    ])
                    .to_string();
                what.push(format!("output {out}"));
                output = out.strip_prefix("{dir}/").filter(|o| !o.contains('/')).map(str::to_string);
                args[2] = out;
            }
            _ => {
                let input = path(rng);
                what.push(format!("input {input}"));
                args[1] = input;
            }
        }
    }
    let mut case = Case::command(Family::Cli, args);
    case.input = Some(("in.pt".into(), bytes));
    case.files.push(garbage_file());
    case.output = output;
    case.previous_output = rng.one_in(3);
    case
}

/// `compare` on folders that are not report runs, or whose `timing.csv` is damaged.
fn compare(rng: &mut Rng, what: &mut Vec<String>) -> Case {
    let header = "op,shape,rows,cols,dtype,device,n_power_iterations,threads,rust_median_us,pytorch_median_us,\
                  ratio_median_rust_over_pytorch,ratio_low,ratio_high";
    let row = rng.pick(&[
        "copy,8x8,8,8,f32,cpu,,1,1.0,2.0,0.5,0.4,0.6",
        "copy,8x8,8,8,f32,cpu,,1,NaN,0,inf,,",
        "copy,8x8,8,8,f32,cpu,,1,1e308,1e-308,1e616,-1,x",
        "copy,8x8",
        "\"unterminated,8x8",
    ]);
    let mut table = format!("{header}\n{row}\n{row}\n").into_bytes();
    if rng.one_in(2) {
        let at = rng.below(table.len());
        table.truncate(at);
        what.push(format!("timing.csv cut at {at}"));
    }
    let mut args = strings(&["compare", "{dir}", "{dir}", "--no-plot", "--out", "{dir}/cmp"]);
    if rng.one_in(3) {
        let i = 1 + rng.below(2);
        args[i] = path(rng);
        what.push(format!("run {}", args[i]));
    }
    // `--out` stays inside the case's folder: a fuzzed path could be `/`.
    let flags = [("--threshold", true, false), ("--python", true, true)];
    mutate_flags(&mut args, &flags, rng, what);
    let mut case = Case::command(Family::Cli, args);
    case.input = Some(("timing.csv".into(), table));
    case.files.push(garbage_file());
    case.check_leftovers = false;
    case
}

/// `operator-norm` on a one-case spec with one field made hostile.
fn operator_norm(rng: &mut Rng, what: &mut Vec<String>) -> Case {
    let mut case_json = json!({
        "name": "c", "seed": 0, "input_size": [8],
        "layer": {"kind": "conv1d", "in_channels": 2, "out_channels": 3, "kernel_size": [3], "bias": true},
        "tolerance": 1e-4, "max_iterations": 50
    });
    let field = *rng.pick(&["seed", "input_size", "tolerance", "max_iterations", "layer", "name"]);
    let hostile: Value = match rng.below(9) {
        0 => json!(-1),
        1 => json!(0),
        2 => json!(u64::MAX),
        3 => json!(1e39),
        4 => json!([1u64 << 40]),
        5 => json!([65536, 65536, 65536]),
        6 => json!("8"),
        7 => Value::Null,
        _ => json!({"kind": "conv3d", "in_channels": 4096, "out_channels": 4096, "kernel_size": [9, 9, 9]}),
    };
    what.push(format!("{field}={:.40}", hostile.to_string()));
    case_json[field] = hostile;
    let spec = json!({ "cases": [case_json] }).to_string().into_bytes();
    let mut args = strings(&["operator-norm", "--spec", "{dir}/spec.json", "--json"]);
    mutate_flags(&mut args, &[("--spec", true, true), ("--json", false, false)], rng, what);
    let mut case = Case::command(Family::Cli, args);
    case.input = Some(("spec.json".into(), spec));
    case.files.push(garbage_file());
    case
}

/// A command line for one of the subcommands.
pub fn generate(rng: &mut Rng, pt: &[(String, Vec<u8>)], spec_cases: &[Value]) -> Case {
    let mut what = Vec::new();
    let mut case = match rng.below(6) {
        0 => seed_loop(rng, &mut what),
        1 => report(rng, &mut what),
        2 => parity(rng, spec_cases, &mut what),
        3 => compare(rng, &mut what),
        4 => operator_norm(rng, &mut what),
        _ => convert(rng, pt, &mut what),
    };
    case.what = format!("{}: {}", case.args[0], what.join(", "));
    case
}
