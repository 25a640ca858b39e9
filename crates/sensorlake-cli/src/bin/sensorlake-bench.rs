//! `sensorlake-bench`: the benchmark binary behind `sensorlake bench`. It has a counting
//! global allocator (only this binary does) so that heap and allocation counts per file
//! are measured, not estimated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use clap::{Parser, Subcommand};
use sensorlake_cli::bench::{self, BenchConfig, HeapCounters};
use sensorlake_cli::stdout;

/// Counts bytes in use, their peak and the number of allocations.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call forwards to the system allocator with the same arguments; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        grew(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        grew(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const COUNTERS: HeapCounters = HeapCounters {
    current: || CURRENT.load(Relaxed),
    peak: || PEAK.load(Relaxed),
    reset_peak: || PEAK.store(CURRENT.load(Relaxed), Relaxed),
    allocations: || ALLOCATIONS.load(Relaxed),
};

/// Bytes, heap, allocations, instructions and time per Parquet file.
#[derive(Debug, Parser)]
#[command(name = "sensorlake-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The real data file (default: data/basicmotions.csv of the repository).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Python with polars for the Polars baseline (default: .venv/bin/python of the
    /// repository, made by ./test.sh).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Skip the callgrind instruction counts.
    #[arg(long)]
    no_callgrind: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encode N 178-row files of one data set and exit (what callgrind measures).
    EncodeOne {
        /// basicmotions, enviro or imu-raw.
        #[arg(long)]
        dataset: String,
        /// default, seed, reference, or codec/float/ts/statistics.
        #[arg(long, default_value = "default")]
        writer: String,
        /// Files to encode.
        #[arg(long, default_value_t = 1)]
        files: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data = cli.data.clone().unwrap_or_else(bench::default_data_path);
    let result = match cli.command {
        Some(Command::EncodeOne {
            dataset,
            writer,
            files,
        }) => bench::parse_writer(&writer)
            .and_then(|w| bench::encode_files(&data, &dataset, w, files))
            .and_then(|bytes| stdout::println(&format!("{files} file(s), {bytes} bytes"))),
        None => {
            let python = cli.python.or_else(|| {
                let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
                venv.exists().then_some(venv)
            });
            let config = BenchConfig {
                data,
                python,
                callgrind: !cli.no_callgrind,
            };
            bench::run(&config, Some(COUNTERS))
                .and_then(|report| stdout::print(&report.to_string()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if stdout::is_stdout_closed(&e) => ExitCode::from(stdout::STDOUT_CLOSED_EXIT),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
