//! Hostile checkpoints (issue 13): reading, converting and writing a damaged or crafted
//! file ends in `Ok` or a typed error, never a panic, an abort, a huge allocation or
//! unbounded work, and never changes the caller's files. One regression per class
//! (repeated and colliding keys, nesting, work, declared sizes, atomic writes), then a
//! seeded generator of mutated real checkpoints (made by the venv's torch) run in-process
//! under `catch_unwind` (seed from `NORM_HOSTILE_SEED`, else the clock; printed).

use super::pickle::{pickle_raw, unpickle, RawTensor, Value};
use super::{convert, ConvertOptions, StateDict, Target};
use crate::ffi;
use norm_core::error::{CheckpointErrorKind, PickleProblem};
use norm_core::Error;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("norm-hostile-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A torch.save-style archive at `path` holding these records besides the version one.
fn archive(path: &Path, records: &[(String, Vec<u8>)]) {
    let mut all = vec![(".format_version".to_string(), b"1".to_vec())];
    all.extend(records.iter().cloned());
    ffi::pt_write_records(path, &all).unwrap();
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn kind_of(path: &Path) -> CheckpointErrorKind {
    match StateDict::read(path) {
        Err(Error::Checkpoint { path: Some(p), kind }) if p == path => *kind,
        other => panic!("{}: {other:?}", path.display()),
    }
}

fn raw<'a>(key: &'a str, storage: &'a str, numel: i64, offset: i64, size: &[i64], stride: &[i64]) -> RawTensor<'a> {
    RawTensor { key, storage, kind: Kind::Float, numel, offset, size: size.to_vec(), stride: stride.to_vec() }
}

fn values(t: &Tensor) -> Vec<f32> {
    let t = t.to_kind(Kind::Float).flatten(0, -1);
    (0..t.numel() as i64).map(|i| t.double_value(&[i]) as f32).collect()
}

#[test]
fn a_repeated_pickle_key_keeps_its_first_place_and_takes_the_last_value_as_torch_load() {
    let dir = dir("repeat");
    let path = dir.join("repeat.pt");
    let pkl = pickle_raw(&[
        raw("a", "0", 2, 0, &[2], &[1]),
        raw("b", "1", 2, 0, &[2], &[1]),
        raw("a", "2", 2, 0, &[2], &[1]),
    ]);
    archive(
        &path,
        &[
            ("data.pkl".into(), pkl),
            ("data/0".into(), floats(&[1.0, 2.0])),
            ("data/1".into(), floats(&[3.0, 4.0])),
            ("data/2".into(), floats(&[5.0, 6.0])),
        ],
    );
    let sd = StateDict::read(&path).unwrap();
    assert_eq!(sd.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(values(sd.get("a").unwrap()), [5.0, 6.0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_converted_key_meeting_a_stale_entry_is_refused_naming_it_and_never_written() {
    let t = |v: &[f32]| Tensor::from_slice(v).reshape([v.len() as i64, 1]);
    let entries = vec![
        ("l.weight".to_string(), t(&[9.0, 9.0])),
        ("l.weight_g".to_string(), t(&[1.0, 2.0])),
        ("l.weight_v".to_string(), t(&[3.0, 4.0])),
        ("m.weight".to_string(), t(&[9.0, 9.0])),
        ("m.weight_g".to_string(), t(&[1.0, 2.0])),
        ("m.weight_v".to_string(), t(&[3.0, 4.0])),
    ];
    let sd = StateDict::new(entries).unwrap();
    let e = convert(&sd, Target::Folded, &ConvertOptions::default()).unwrap_err();
    let want = CheckpointErrorKind::DuplicateKey { keys: vec!["l.weight".into(), "m.weight".into()] };
    assert_eq!(e.checkpoint_kind(), Some(&want), "{e}");
    assert!(e.to_string().contains("`l.weight`, `m.weight` twice"), "{e}");
    // A state dict never holds a key twice, so no writer (tch's safetensors one panics) sees it.
    let twice = vec![("k".to_string(), t(&[1.0])), ("k".to_string(), t(&[2.0]))];
    let e = StateDict::new(twice).unwrap_err();
    assert_eq!(e.checkpoint_kind(), Some(&CheckpointErrorKind::DuplicateKey { keys: vec!["k".into()] }));
}

fn problem(pkl: &[u8]) -> (usize, PickleProblem) {
    let e = unpickle(pkl).expect_err("a hostile pickle was read");
    (e.offset, e.problem)
}

#[test]
fn nesting_is_refused_past_the_limit_with_the_offset() {
    const N: usize = 300_000;
    let limit = PickleProblem::NestingTooDeep { limit: 1000 };
    // Lists appended into lists: the 1001st APPEND makes height 1001.
    let mut lists = b"\x80\x02".to_vec();
    lists.extend(std::iter::repeat_n(b']', N));
    lists.extend(std::iter::repeat_n(b'a', N - 1));
    lists.push(b'.');
    assert_eq!(problem(&lists), (2 + N + 1000, limit.clone()));
    // Tuples of tuples (TUPLE1), MARKs open at once, dicts in dicts.
    let mut tuples = b"\x80\x02N".to_vec();
    tuples.extend(std::iter::repeat_n(0x85, N));
    assert_eq!(problem(&tuples), (3 + 1000, limit.clone()));
    let mut marks = b"\x80\x02".to_vec();
    marks.extend(std::iter::repeat_n(b'(', N));
    assert_eq!(problem(&marks), (2 + 1000, limit.clone()));
    let mut dicts = b"\x80\x02".to_vec();
    dicts.extend(std::iter::repeat_n(&b"}K\x01"[..], N).flatten());
    dicts.push(b'}');
    dicts.extend(std::iter::repeat_n(b's', N));
    assert_eq!(problem(&dicts), (2 + 3 * N + 1 + 1000, limit));
    // 1000 levels are fine.
    let mut ok = b"\x80\x02".to_vec();
    ok.extend(std::iter::repeat_n(b']', 1000));
    ok.extend(std::iter::repeat_n(b'a', 999));
    ok.push(b'.');
    assert!(unpickle(&ok).is_ok());
}

#[test]
fn a_cycle_is_refused() {
    assert_eq!(problem(b"\x80\x02]q\x00h\x00a."), (7, PickleProblem::GrowsAfterNesting));
    // a = []; b = [a]; a.append(b)
    assert_eq!(problem(b"\x80\x02]q\x00]q\x01h\x00ah\x01a."), (13, PickleProblem::GrowsAfterNesting));
}

#[test]
fn dropping_a_deep_value_tree_is_iterative() {
    use super::pickle::{DictObj, Seq};
    use std::{cell::RefCell, rc::Rc};
    let mut v = Value::None;
    for i in 0..1_000_000 {
        v = match i % 3 {
            0 => Value::List(Rc::new(RefCell::new(Seq { items: vec![v], height: 0, contained: true }))),
            1 => Value::Tuple(Rc::new(Seq { items: vec![v], height: 0, contained: true })),
            _ => {
                let mut d = DictObj::default();
                d.insert(Value::Int(0), v);
                Value::Dict(Rc::new(RefCell::new(d)))
            }
        };
    }
    drop(v); // a recursive drop overflows the stack long before a million levels
}

#[test]
fn a_memoized_string_reused_as_a_key_exhausts_the_work_budget() {
    let mut pkl = b"\x80\x02".to_vec();
    pkl.push(b'X');
    pkl.extend_from_slice(&100_000u32.to_le_bytes());
    pkl.extend(std::iter::repeat_n(b'k', 100_000));
    pkl.extend_from_slice(b"q\x000}");
    pkl.extend(std::iter::repeat_n(&b"h\x00Ns"[..], 1_000_000).flatten());
    pkl.push(b'.');
    let start = std::time::Instant::now();
    let (_, p) = problem(&pkl);
    assert!(matches!(p, PickleProblem::TooMuchWork { .. }), "{p:?}");
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}

#[test]
fn declared_sizes_offsets_and_strides_are_checked_before_use() {
    let dir = dir("sizes");
    const BIG: i64 = 1 << 62;
    let bad_view = |t: &RawTensor<'_>| CheckpointErrorKind::BadView {
        key: t.key.into(),
        size: t.size.clone(),
        stride: t.stride.clone(),
        offset: t.offset,
        numel: t.numel,
    };
    let cases: Vec<(RawTensor<'_>, Option<CheckpointErrorKind>)> = vec![
        (raw("w", "0", 4, 0, &[4], &[1]), None),
        (raw("w", "0", BIG, 0, &[4], &[1]), Some(bad_view(&raw("w", "0", BIG, 0, &[4], &[1])))),
        (
            raw("w", "0", 1 << 40, 0, &[4], &[1]),
            Some(CheckpointErrorKind::StorageTooShort {
                key: "w".into(),
                record: "data/0".into(),
                bytes: 16,
                expected: 1 << 42,
            }),
        ),
        (raw("w", "0", 4, 0, &[2], &[BIG]), Some(bad_view(&raw("w", "0", 4, 0, &[2], &[BIG])))),
        (raw("w", "0", 4, 0, &[3], &[BIG]), Some(bad_view(&raw("w", "0", 4, 0, &[3], &[BIG])))),
        (raw("w", "0", 4, BIG, &[1], &[1]), Some(bad_view(&raw("w", "0", 4, BIG, &[1], &[1])))),
        (raw("w", "0", 4, -1, &[1], &[1]), Some(bad_view(&raw("w", "0", 4, -1, &[1], &[1])))),
        (raw("w", "0", 4, 0, &[-4], &[1]), Some(bad_view(&raw("w", "0", 4, 0, &[-4], &[1])))),
        (raw("w", "0", 4, 3, &[2], &[-1]), Some(bad_view(&raw("w", "0", 4, 3, &[2], &[-1])))),
        (raw("w", "0", -1, 0, &[0], &[1]), Some(bad_view(&raw("w", "0", -1, 0, &[0], &[1])))),
        (raw("w", "0", 4, 5, &[0], &[1]), Some(bad_view(&raw("w", "0", 4, 5, &[0], &[1])))),
        (
            raw("w", "0", 4, 0, &[1 << 31, 1 << 31, 1 << 31], &[0, 0, 0]),
            Some(bad_view(&raw("w", "0", 4, 0, &[1 << 31, 1 << 31, 1 << 31], &[0, 0, 0]))),
        ),
        (
            raw("w", "9", 4, 0, &[4], &[1]),
            Some(CheckpointErrorKind::MissingStorage { key: "w".into(), record: "data/9".into() }),
        ),
    ];
    for (i, (t, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.pt"));
        archive(
            &path,
            &[("data.pkl".into(), pickle_raw(std::slice::from_ref(t))), ("data/0".into(), floats(&[1.0; 4]))],
        );
        match want {
            None => assert_eq!(StateDict::read(&path).unwrap().len(), 1),
            Some(want) => assert_eq!(&kind_of(&path), want, "case {i}"),
        }
    }
    // An expanded view (stride 0) of 2^40 elements: refused before any copy.
    let path = dir.join("expanded.pt");
    let t = raw("w", "0", 4, 0, &[1 << 20, 1 << 20], &[0, 0]);
    archive(&path, &[("data.pkl".into(), pickle_raw(&[t])), ("data/0".into(), floats(&[1.0; 4]))]);
    assert!(matches!(kind_of(&path), CheckpointErrorKind::TooLarge { .. }));
    // 100 tensors viewing one 1 MiB storage: refused past 4 x the file + 64 MiB.
    let path = dir.join("many_views.pt");
    let keys: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
    let refs: Vec<RawTensor<'_>> = keys.iter().map(|k| raw(k, "0", 1 << 18, 0, &[1 << 18], &[1])).collect();
    archive(&path, &[("data.pkl".into(), pickle_raw(&refs)), ("data/0".into(), vec![0u8; 1 << 20])]);
    assert!(matches!(kind_of(&path), CheckpointErrorKind::TooLarge { .. }));
    // Two tensors on one storage (tied weights) read as torch.load reads them.
    let path = dir.join("tied.pt");
    let tied = [raw("a", "0", 4, 0, &[2, 2], &[2, 1]), raw("b", "0", 4, 1, &[2], &[2])];
    archive(&path, &[("data.pkl".into(), pickle_raw(&tied)), ("data/0".into(), floats(&[1.0, 2.0, 3.0, 4.0]))]);
    let sd = StateDict::read(&path).unwrap();
    assert_eq!(
        (values(sd.get("a").unwrap()), values(sd.get("b").unwrap())),
        (vec![1.0, 2.0, 3.0, 4.0], vec![2.0, 4.0])
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn safetensors_declared_sizes_are_checked() {
    let dir = dir("st");
    let file = |name: &str, header: &str, data: usize| {
        let path = dir.join(name);
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, data));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let cases = [
        file("dim.safetensors", r#"{"w":{"dtype":"F32","shape":[0,9223372036854775809],"data_offsets":[0,0]}}"#, 0),
        file(
            "overflow.safetensors",
            r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#,
            16,
        ),
        file("past_end.safetensors", r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1600]}}"#, 16),
        file("gap.safetensors", r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#, 24),
        file("dtype.safetensors", r#"{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}"#, 4),
    ];
    for path in &cases {
        assert!(matches!(kind_of(path), CheckpointErrorKind::Safetensors { .. }), "{}", path.display());
    }
    let ok = file("ok.safetensors", r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 16);
    assert_eq!(StateDict::read(&ok).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_failed_write_leaves_the_previous_file_and_no_temporary() {
    let dir = dir("atomic");
    let good = StateDict::new(vec![("w".into(), Tensor::from_slice(&[1.0f32, 2.0]))]).unwrap();
    let bad = StateDict::new(vec![("c".into(), Tensor::zeros([2], (Kind::ComplexHalf, Device::Cpu)))]).unwrap();
    for name in ["out.pt", "out.safetensors"] {
        let path = dir.join(name);
        std::fs::write(&path, b"previous bytes").unwrap();
        let e = bad.write(&path).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"previous bytes");
        let fresh = dir.join(format!("new-{name}"));
        assert!(bad.write(&fresh).is_err());
        assert!(!fresh.exists());
        good.write(&path).unwrap();
        assert_eq!(StateDict::read(&path).unwrap().len(), 1);
    }
    // A failure after the temporary is complete (the rename onto a folder).
    let folder = dir.join("taken.pt");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"x").unwrap();
    assert!(good.write(&folder).is_err());
    assert_eq!(listing(&folder), ["inside"]);
    assert_eq!(listing(&dir), ["out.pt", "out.safetensors", "taken.pt"]);
    // A folder that does not exist: the error names the file asked for, not a temporary.
    let nowhere = dir.join("missing-folder").join("out.pt");
    let e = good.write(&nowhere).unwrap_err();
    assert!(matches!(&e, Error::Io { path, .. } if *path == nowhere), "{e:?}");
    assert!(!e.to_string().contains(".norm-tmp"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// xorshift64*: the generator's deterministic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values a hostile file declares: huge, negative, past the ends, off by one.
const HOSTILE: [i64; 8] = [1 << 62, -1, i64::MAX, i64::MIN, 1 << 31, (1 << 32) - 1, 0, 65537];

/// One mutation of the pickle: flipped bytes, a truncation, a hostile integer argument, or
/// nesting spliced in.
fn mutate_pickle(pkl: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = pkl.to_vec();
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
        }
        1 => out.truncate(rng.below(out.len())),
        2 | 3 => {
            // Replace one small int opcode (K/M/J) by a LONG1 of a hostile value.
            let ints: Vec<usize> =
                (0..out.len().saturating_sub(2)).filter(|&i| matches!(out[i], b'K' | b'M' | b'J')).collect();
            if let Some(&i) = ints.get(rng.below(ints.len())) {
                let len = match out[i] {
                    b'K' => 2,
                    b'M' => 3,
                    _ => 5,
                };
                let mut long = vec![0x8a, 8];
                long.extend_from_slice(&HOSTILE[rng.below(HOSTILE.len())].to_le_bytes());
                out.splice(i..(i + len).min(out.len()), long);
            }
        }
        _ => {
            let at = rng.below(out.len());
            let depth = 1 + rng.below(5000);
            let mut deep: Vec<u8> = std::iter::repeat_n(b']', depth).collect();
            deep.extend(std::iter::repeat_n(b'a', depth - 1));
            out.splice(at..at, deep);
        }
    }
    out
}

/// Reads `path`, and if it reads, converts it to every target and writes each result as
/// `.pt` and `.safetensors` into `out`: each step `Ok` or a typed error. Returns whether
/// the read succeeded.
fn exercise(path: &Path, out: &Path) -> bool {
    let Ok(sd) = StateDict::read(path) else { return false };
    for target in [Target::Folded, Target::Hooks, Target::Parametrizations] {
        if let Ok((converted, _)) = convert(&sd, target, &ConvertOptions::default()) {
            converted.write(out.join("out.pt")).ok();
            converted.write(out.join("out.safetensors")).ok();
        }
    }
    true
}

#[test]
fn mutated_real_checkpoints_give_ok_or_typed_errors_never_a_panic() {
    let Some(python) = norm_test_support::python_or_skip("hostile checkpoints").unwrap() else { return };
    let dir = dir("fuzz");
    let real = dir.join("real.pt");
    let script = "import sys, torch\n\
        from torch import nn\n\
        from torch.nn.utils import weight_norm, spectral_norm, parametrizations\n\
        torch.manual_seed(0)\n\
        m = nn.Sequential(weight_norm(nn.Linear(3, 4)), spectral_norm(nn.Linear(4, 2)),\n\
            parametrizations.weight_norm(nn.Conv1d(2, 2, 3)), nn.BatchNorm1d(2),\n\
            parametrizations.spectral_norm(nn.Linear(2, 2)))\n\
        torch.save(m.state_dict(), sys.argv[1])\n";
    let status = std::process::Command::new(python).args(["-c", script]).arg(&real).status().unwrap();
    assert!(status.success());
    let real_sd = StateDict::read(&real).unwrap();
    let real_st = dir.join("real.safetensors");
    real_sd.write(&real_st).unwrap();
    let seed = std::env::var("NORM_HOSTILE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("hostile checkpoints: NORM_HOSTILE_SEED={seed}");
    let mut rng = Rng(seed);
    let records = ffi::pt_read_records(&real, std::fs::metadata(&real).unwrap().len()).unwrap();
    let pkl_at = records.iter().position(|(n, _)| n == "data.pkl").unwrap();
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for source in [&real, &real_st] {
        let bytes = std::fs::read(source).unwrap();
        let ext = source.extension().unwrap().to_string_lossy().into_owned();
        let step = (bytes.len() / 40).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            cases.push((format!("truncated at {cut}.{ext}"), bytes[..cut].to_vec()));
        }
        for _ in 0..40 {
            let mut b = bytes.clone();
            let i = rng.below(b.len());
            b[i] ^= 1 << rng.below(8);
            cases.push((format!("flipped byte {i}.{ext}"), b));
        }
        for _ in 0..20 {
            let mut b = bytes.clone();
            let i = rng.below(b.len().saturating_sub(8));
            b[i..i + 8].copy_from_slice(&HOSTILE[rng.below(HOSTILE.len())].to_le_bytes());
            cases.push((format!("8 bytes at {i} set.{ext}"), b));
        }
    }
    let mut read_ok = 0;
    let n_pickle = 300;
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.{}", what.rsplit('.').next().unwrap()));
        std::fs::write(&path, bytes).unwrap();
        let ok = std::panic::catch_unwind(|| exercise(&path, &out));
        assert!(ok.is_ok(), "seed {seed}: {what} panicked");
        assert_eq!(&std::fs::read(&path).unwrap(), bytes, "seed {seed}: {what} changed the input");
        read_ok += ok.unwrap() as usize;
        std::fs::remove_file(&path).ok();
    }
    for i in 0..n_pickle {
        let mut mutated = records.clone();
        mutated[pkl_at].1 = mutate_pickle(&records[pkl_at].1, &mut rng);
        if rng.below(4) == 0 {
            // A storage record cut short as well.
            let j = rng.below(mutated.len());
            let len = mutated[j].1.len();
            mutated[j].1.truncate(rng.below(len + 1));
        }
        let path = dir.join(format!("pickle{i}.pt"));
        ffi::pt_write_records(&path, &mutated).unwrap();
        let before = std::fs::read(&path).unwrap();
        let ok = std::panic::catch_unwind(|| exercise(&path, &out));
        assert!(ok.is_ok(), "seed {seed}: pickle mutation {i} panicked");
        assert_eq!(std::fs::read(&path).unwrap(), before, "seed {seed}: pickle mutation {i} changed the input");
        read_ok += ok.unwrap() as usize;
        std::fs::remove_file(&path).ok();
    }
    let leftovers: Vec<String> = listing(&out).into_iter().filter(|n| n.starts_with(".norm-tmp")).collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    eprintln!("hostile checkpoints: {} cases, {read_ok} read", cases.len() + n_pickle);
    std::fs::remove_dir_all(&dir).ok();
}
