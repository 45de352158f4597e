//! `norm-bench fuzz`: norm-bench's own fuzzer (docs/fuzzing.md). It mutates real inputs —
//! checkpoints written by the venv's torch ([`checkpoint`], over [`zip`] and [`pickle`]),
//! parity specs ([`spec`]) and command lines ([`cli`]) — runs the real binary on each
//! as a child process under a timeout and a memory watch ([`child`]), and classifies what
//! happened ([`outcome`]): a clean error or a success is fine; a panic, a signal, a hang,
//! memory over the limit, a changed input file or a partial output fails the run.
//!
//! Case `i` of a run seeded with `s` depends on `(s, i)` and the families alone
//! ([`rng::Rng::for_case`]), so `norm-bench fuzz --seed s --families F --case i` replays it.

pub mod checkpoint;
pub mod child;
pub mod cli;
pub mod corpus;
pub mod outcome;
pub mod output_check;
pub mod pickle;
pub mod rng;
pub mod spec;
pub mod table;
pub mod zip;

use anyhow::{bail, Context, Result};
use corpus::Corpus;
use outcome::{FileChecks, Outcome};
use rng::Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The input families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Family {
    /// Mutated `.pt` checkpoints, fed to `norm-bench convert`.
    Pt,
    /// Mutated `.safetensors` checkpoints, fed to `norm-bench convert`.
    Safetensors,
    /// Mutated parity specs, fed to `norm-bench parity --json`.
    Spec,
    /// Command lines of every subcommand with extreme and garbage values.
    Cli,
}

impl Family {
    /// Every family, in table order.
    pub const ALL: [Family; 4] = [Family::Pt, Family::Safetensors, Family::Spec, Family::Cli];

    /// The name `--families` takes.
    pub fn name(self) -> &'static str {
        match self {
            Family::Pt => "pt",
            Family::Safetensors => "safetensors",
            Family::Spec => "spec",
            Family::Cli => "cli",
        }
    }
}

/// `norm-bench fuzz`'s flags.
#[derive(clap::Args, Clone, Debug)]
pub struct FuzzArgs {
    /// Stop starting cases after this many seconds (1 to 86400).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub seconds: u64,
    /// Stop after this many cases (1 to 10^9).
    #[arg(long, default_value_t = 1_000_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub cases: u64,
    /// The run's seed [default: from the clock]; printed first, so a run can be replayed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only case N of the seed (a replay); prints its command line and stderr.
    #[arg(long, value_name = "N")]
    pub case: Option<u64>,
    /// The input families, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "pt,safetensors,spec,cli")]
    pub families: Vec<Family>,
    /// Print each case's family, mutations and command line instead of running it.
    #[arg(long)]
    pub dry_run: bool,
    /// Write each bad case's input, command line and stderr under DIR/bad/, and the
    /// family x outcome table as DIR/summary.csv and DIR/summary.md.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Parallel cases (1 to 64) [default: the logical CPUs].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: Option<u64>,
    /// Per-case timeout in seconds (1 to 3600).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Per-case resident-memory limit in MiB (64 to 1048576).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub memory_mb: u64,
    /// The norm-bench binary under test [default: this one].
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Folder of the checkpoint corpus (written there by the venv's torch unless present)
    /// [default: a fresh folder in the work folder].
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Python with torch that writes the checkpoint corpus [default: the repo's .venv/bin/python].
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// One fuzz case: the files it starts with, the command line (`{dir}` stands for the
/// case's folder, also the child's working folder), and what to check afterwards.
#[derive(Clone, Debug)]
pub struct Case {
    /// The family.
    pub family: Family,
    /// What was done, for the report.
    pub what: String,
    /// The input file (name in the case's folder, bytes), checked unchanged after the run.
    pub input: Option<(String, Vec<u8>)>,
    /// Other files the case starts with.
    pub files: Vec<(String, Vec<u8>)>,
    /// The arguments after the binary.
    pub args: Vec<String>,
    /// The output file the command writes (name in the case's folder), if any: it must
    /// not appear (or change, with `previous_output`) when the command fails.
    pub output: Option<String>,
    /// Whether a previous output file is there before the run.
    pub previous_output: bool,
    /// Whether any other new file in the case's folder counts as a leftover.
    pub check_leftovers: bool,
}

/// What a previous output file holds before the run.
const PREVIOUS_OUTPUT: &[u8] = b"a previous output, to be kept when the command fails\n";

impl Case {
    /// A case that runs `args`, with no files yet.
    pub fn command(family: Family, args: Vec<String>) -> Self {
        Case {
            family,
            what: String::new(),
            input: None,
            files: Vec::new(),
            args,
            output: None,
            previous_output: false,
            check_leftovers: true,
        }
    }

    /// Case `index` of a run seeded with `seed` over `families`.
    pub fn generate(seed: u64, index: u64, families: &[Family], corpus: &Corpus) -> Self {
        let mut rng = Rng::for_case(seed, index);
        let family = *rng.pick(families);
        let convert_case = |input: &str, bytes: Vec<u8>, what: String, rng: &mut Rng| {
            let out_ext = if rng.one_in(2) { "pt" } else { "safetensors" };
            // A stale key collides with a converted one when the target writes its name.
            let to = if what.contains("stale") && rng.one_in(2) {
                "folded"
            } else {
                rng.pick(&["hooks", "parametrizations", "folded"])
            };
            let output = format!("out.{out_ext}");
            let args = ["convert", &format!("{{dir}}/{input}"), &format!("{{dir}}/{output}"), "--to", to];
            let mut case = Case::command(family, args.iter().map(|s| s.to_string()).collect());
            case.input = Some((input.to_string(), bytes));
            case.output = Some(output);
            case.previous_output = rng.one_in(3);
            case.what = what;
            case
        };
        match family {
            Family::Pt => {
                let (name, bytes) = rng.pick(&corpus.pt);
                let m = checkpoint::mutate_pt(bytes, &mut rng);
                convert_case("in.pt", m.bytes, format!("{name}: {}", m.what), &mut rng)
            }
            Family::Safetensors => {
                let (name, bytes) = rng.pick(&corpus.safetensors);
                let m = checkpoint::mutate_safetensors(bytes, &mut rng);
                convert_case("in.safetensors", m.bytes, format!("{name}: {}", m.what), &mut rng)
            }
            Family::Spec => {
                let (bytes, what) = spec::mutate(&corpus.spec_cases, &mut rng);
                let args = ["parity", "--spec", "{dir}/spec.json", "--json"];
                let mut case = Case::command(family, args.iter().map(|s| s.to_string()).collect());
                case.input = Some(("spec.json".into(), bytes));
                case.what = what;
                case
            }
            Family::Cli => cli::generate(&mut rng, &corpus.pt, &corpus.spec_cases),
        }
    }

    /// The command line as a shell would take it, `{dir}` kept.
    pub fn command_line(&self) -> String {
        let quote = |a: &String| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./{}=,:".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        };
        std::iter::once("norm-bench".to_string()).chain(self.args.iter().map(quote)).collect::<Vec<_>>().join(" ")
    }
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's index.
    pub index: u64,
    /// The case.
    pub case: Case,
    /// Its outcome.
    pub outcome: Outcome,
    /// The exit status or what ended it, in words.
    pub ended: String,
    /// The last lines of its stderr.
    pub stderr_tail: String,
    /// Wall clock.
    pub elapsed: Duration,
    /// The highest resident memory seen, in bytes.
    pub peak_rss: u64,
}

/// The names of the files in `dir` (one level).
fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Runs `case` in a fresh `dir` with `binary`; removes `dir` afterwards.
pub fn execute(case: &Case, index: u64, binary: &Path, dir: &Path, limits: child::Limits) -> Result<CaseResult> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in case.input.iter().chain(&case.files) {
        std::fs::write(dir.join(name), bytes)?;
    }
    if let (Some(output), true) = (&case.output, case.previous_output) {
        std::fs::write(dir.join(output), PREVIOUS_OUTPUT)?;
    }
    let before = listing(dir);
    let dir_text = dir.to_string_lossy();
    let args: Vec<String> = case.args.iter().map(|a| a.replace("{dir}", &dir_text)).collect();
    let logs = dir.with_extension("logs");
    std::fs::create_dir_all(&logs)?;
    let (stdout, stderr) = (logs.join("stdout"), logs.join("stderr"));
    let ended = child::run(binary, &args, dir, &stdout, &stderr, limits)?;

    let mut files = FileChecks { bad_output: None, ..FileChecks::default() };
    if let Some((name, bytes)) = &case.input {
        files.input_changed = std::fs::read(dir.join(name)).map_or(true, |now| now != *bytes);
    }
    let after = listing(dir);
    if let Some(output) = &case.output {
        let path = dir.join(output);
        files.output_after_failure = if case.previous_output {
            std::fs::read(&path).map_or(true, |now| now != PREVIOUS_OUTPUT)
        } else {
            path.exists()
        };
    }
    if let (Some(output), Some(status)) = (&case.output, &ended.status) {
        if status.success() {
            files.bad_output = output_check::problem(&dir.join(output));
        }
    }
    if case.check_leftovers {
        files.leftovers = after.iter().any(|f| !before.contains(f) && Some(f) != case.output.as_ref());
    }
    let outcome = outcome::classify(&ended, &files);
    let ended_words = match (&ended.status, ended.timed_out, ended.over_memory) {
        (_, true, _) => format!("killed after {:.1} s", ended.elapsed.as_secs_f64()),
        (_, _, true) => format!("killed at {} MiB resident", ended.peak_rss >> 20),
        (Some(status), _, _) => status.to_string(),
        (None, _, _) => "killed".to_string(),
    };
    let leftovers: Vec<&String> = after.difference(&before).collect();
    let mut stderr_tail: String =
        ended.stderr_tail.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    if let Some(problem) = &files.bad_output {
        stderr_tail.push_str(&format!("\n[fuzz] output: {problem}"));
    }
    if outcome == Outcome::PartialOutput || outcome == Outcome::InputChanged {
        stderr_tail.push_str(&format!("\n[fuzz] new files: {leftovers:?}"));
    }
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(&logs);
    Ok(CaseResult {
        index,
        case: case.clone(),
        outcome,
        ended: ended_words,
        stderr_tail,
        elapsed: ended.elapsed,
        peak_rss: ended.peak_rss,
    })
}

/// Writes a bad case under `out/bad/`: its files, `command.txt`, `stderr.txt`.
fn save_bad(out: &Path, seed: u64, families: &str, r: &CaseResult) -> Result<()> {
    let dir = out.join("bad").join(format!("{}-{}-{}", r.case.family.name(), r.index, r.outcome.name()));
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in r.case.input.iter().chain(&r.case.files) {
        std::fs::write(dir.join(name), bytes)?;
    }
    let text = format!(
        "# {} ({}): {}\n# replay: norm-bench fuzz --seed {seed} --families {families} --case {}\n# or, in this folder ({{dir}} = this folder):\n{}\n",
        r.outcome.name(),
        r.ended,
        r.case.what,
        r.index,
        r.case.command_line()
    );
    std::fs::write(dir.join("command.txt"), text)?;
    std::fs::write(dir.join("stderr.txt"), &r.stderr_tail)?;
    Ok(())
}

fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// `norm-bench fuzz`: exit 0 when every case was a clean error or a success, 1 otherwise.
pub fn run_cli(args: &FuzzArgs) -> Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(clock_seed);
    let mut families: Vec<Family> = args.families.clone();
    families.dedup();
    if families.is_empty() {
        bail!("--families must name at least one of pt, safetensors, spec, cli");
    }
    let family_list = families.iter().map(|f| f.name()).collect::<Vec<_>>().join(",");
    eprintln!("fuzz: seed {seed} (replay: norm-bench fuzz --seed {seed} --families {family_list})");
    let binary = match &args.binary {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("finding this binary")?,
    };
    let work = std::env::temp_dir().join(format!("norm-fuzz-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let repo = crate::golden::repo_root();
    let python = args.python.clone().unwrap_or_else(crate::report::pytorch::default_python);
    let corpus_dir = args.corpus.clone().unwrap_or_else(|| work.join("corpus"));
    let needs_checkpoints = families.iter().any(|f| matches!(f, Family::Pt | Family::Safetensors | Family::Cli));
    let corpus = Corpus::load(&repo, &corpus_dir, &python, needs_checkpoints)?;
    let limits = child::Limits { timeout: Duration::from_secs(args.timeout), max_rss: args.memory_mb << 20 };

    if args.dry_run {
        let indices = match args.case {
            Some(index) => index..index + 1,
            None => 0..args.cases.min(100_000),
        };
        for index in indices {
            let case = Case::generate(seed, index, &families, &corpus);
            println!("{index}\t{}\t{}\t{}", case.family.name(), case.what, case.command_line());
        }
        let _ = std::fs::remove_dir_all(&work);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(index) = args.case {
        let case = Case::generate(seed, index, &families, &corpus);
        eprintln!("fuzz: case {index} ({}): {}\n{}", case.family.name(), case.what, case.command_line());
        let r = execute(&case, index, &binary, &work.join("replay"), limits)?;
        eprintln!(
            "{}\n---\n{}: {} in {:.2} s, {} MiB peak",
            r.stderr_tail,
            r.outcome.name(),
            r.ended,
            r.elapsed.as_secs_f64(),
            r.peak_rss >> 20
        );
        if let Some(out) = &args.out {
            save_bad(out, seed, &family_list, &r)?;
        }
        let _ = std::fs::remove_dir_all(&work);
        return Ok(if r.outcome.is_bad() { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }

    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u64));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<CaseResult>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..jobs {
            let (next, results, failure, corpus, families, binary, work) =
                (&next, &results, &failure, &corpus, &families, &binary, &work);
            let (seed, family_list) = (seed, &family_list);
            scope.spawn(move || loop {
                if Instant::now() >= deadline {
                    break;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= args.cases {
                    break;
                }
                let case = Case::generate(seed, index, families, corpus);
                match execute(&case, index, binary, &work.join(format!("w{worker}")), limits) {
                    Ok(r) => {
                        if r.outcome.is_bad() {
                            eprintln!(
                                "fuzz: BAD case {index} ({}, {}): {} ({})\n  {}\n  replay: norm-bench fuzz --seed {seed} --families {family_list} --case {index}\n  {}",
                                r.case.family.name(), r.case.what, r.outcome.name(), r.ended, r.case.command_line(),
                                r.stderr_tail.replace('\n', "\n  ")
                            );
                            if let Some(out) = &args.out {
                                if let Err(e) = save_bad(out, seed, family_list, &r) {
                                    eprintln!("fuzz: could not save case {index}: {e:#}");
                                }
                            }
                        }
                        results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                    Err(e) => {
                        *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.context(format!("case {index}")));
                        break;
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|r| r.index);
    let table = table::Table::of(&results, &families);
    let markdown = table.markdown(seed, &family_list);
    print!("{markdown}");
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("summary.csv"), table.csv())?;
        std::fs::write(out.join("summary.md"), &markdown)?;
    }
    let bad = results.iter().filter(|r| r.outcome.is_bad()).count();
    eprintln!("fuzz: {} cases, {bad} bad (seed {seed})", results.len());
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
