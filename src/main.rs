//! The `mirato` command: a thin layer over the library modules.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use mirato::generate::{self, GenerateOptions, OutputFormat};
use mirato::ingest::{self, FileReport, Ingester};
use mirato::privacy::{self, Key};
use mirato::query::{Engine, RawParams, output};
use mirato::status;
use mirato::store::Store;

/// mimalloc: ingest allocates small strings on one thread and frees them on another, which the
/// system allocator handles poorly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "mirato",
    version,
    about = "Outputs and outcomes of the collocamento mirato (L. 68/1999), from case events"
)]
struct Cli {
    /// The data folder: the Parquet store, quarantine and ledger [default: data_dir of
    /// mirato.toml, or ./data].
    #[arg(long, global = true, env = "MIRATO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The configuration file [default: ./mirato.toml when it exists]; `mirato config` shows
    /// every key with its default.
    #[arg(long, global = true, env = "MIRATO_CONFIG")]
    config: Option<PathBuf>,
    /// The pseudonymisation key (created on first use, mode 0600). Keep it outside the data
    /// folder and back it up: without it, new events get new pseudonyms.
    #[arg(long, global = true, env = "MIRATO_KEY_FILE")]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write synthetic case events (CSV or JSONL), one file per region and year.
    Generate {
        /// How many persons to simulate (about 25 events each).
        #[arg(long)]
        persons: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value = "generated")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = FileFormat::Csv)]
        format: FileFormat,
        /// Compress the files with gzip.
        #[arg(long)]
        gzip: bool,
        /// First day of the simulated period.
        #[arg(long, default_value = "2021-01-01")]
        start: NaiveDate,
        /// Last day of the simulated period.
        #[arg(long, default_value = "2025-12-31")]
        end: NaiveDate,
        /// Share of rows made deliberately invalid, to exercise the quarantine.
        #[arg(long, default_value_t = 0.001)]
        error_rate: f64,
        /// Share of rows sent twice, to exercise deduplication.
        #[arg(long, default_value_t = 0.001)]
        duplicate_rate: f64,
    },
    /// Ingest CSV / JSONL files (or folders of them, gzip or not) into the store.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// `text` for a readable summary, `json` for one object per file.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Compute a KPI of the catalogue (KPIS.md).
    Kpi {
        /// The KPI id, e.g. acceptance_rate.
        #[arg(required_unless_present_any = ["list", "all"])]
        id: Option<String>,
        /// List every KPI with its label and kind.
        #[arg(long)]
        list: bool,
        /// Run the whole catalogue with these parameters and report each KPI's time.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// With --all: run the catalogue this many times in one process and report the last
        /// pass (the shared views are then warm, as in a running server).
        #[arg(long, default_value_t = 1, requires = "all")]
        passes: u32,
        /// With --all or --explain: also compute the cell keys of perturbation, as the server
        /// does for every figure it may show below admin (for tuning; the figures stay exact).
        #[arg(long)]
        cell_keys: bool,
        /// Print the query plan with each operator's measured time and rows (EXPLAIN ANALYZE)
        /// instead of the result, after one run that builds the shared views: for tuning.
        #[arg(long, conflicts_with_all = ["list", "all"])]
        explain: bool,
        /// With --explain: this SQL file instead of the KPI's own row query.
        #[arg(long, requires = "explain")]
        query_file: Option<PathBuf>,
        /// First day of the period (YYYY-MM-DD); default 1 January of the latest event's year.
        #[arg(long)]
        from: Option<String>,
        /// Last day of the period (YYYY-MM-DD); default the latest event's date.
        #[arg(long)]
        to: Option<String>,
        /// One or two breakdowns, comma-separated (e.g. region,gender).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = KpiFormat::Table)]
        format: KpiFormat,
    },
    /// Show what the store holds.
    Status,
    /// The scheduled jobs: list them, or run one now.
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
    },
    /// Print every configuration key with its default (the content of a full mirato.toml).
    Config,
    /// Reports: the ANPAL / Relazione al Parlamento workbook.
    Report {
        #[command(subcommand)]
        kind: ReportKind,
    },
    /// Analysis files for evaluators.
    Export {
        #[command(subcommand)]
        kind: ExportKind,
    },
    /// Users, roles, territorial scopes and API tokens.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Serve the dashboards, the exports and the API, and run the scheduled jobs.
    Serve {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Generate the sample data if `sample-data/` is empty, ingest it, show what was stored, and
    /// serve the dashboards.
    Demo {
        #[arg(long, default_value = "sample-data")]
        sample_dir: PathBuf,
        /// Stop after the ingest and the headline figures instead of serving.
        #[arg(long)]
        no_serve: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// The territorial filters and `as_of` that KPIs and the cohort file take.
#[derive(Args, Debug, Clone)]
struct FilterArgs {
    /// Region ISTAT codes or names, comma-separated.
    #[arg(long)]
    region: Option<String>,
    /// Province siglas, comma-separated.
    #[arg(long)]
    province: Option<String>,
    /// CPI codes, comma-separated.
    #[arg(long)]
    cpi: Option<String>,
    /// Count only events ingested at or before this instant (RFC 3339, or a date).
    #[arg(long)]
    as_of: Option<String>,
}

impl FilterArgs {
    fn raw(self, from: Option<String>, to: Option<String>, by: Option<String>) -> RawParams {
        RawParams {
            from,
            to,
            by: mirato::list::parse(by.as_deref()),
            region: self.region,
            province: self.province,
            cpi: self.cpi,
            as_of: self.as_of,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct ServerArgs {
    /// Address to listen on [default: server.addr of mirato.toml, 127.0.0.1:8080: this machine
    /// only].
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    /// A folder of dashboard pages (`*.toml`) to use instead of the built-in ones.
    #[arg(long)]
    dashboards: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum ReportKind {
    /// The workbook for ANPAL and the Ministry (six fixed sheets, in Italian), plus a CSV per
    /// sheet beside it. Small cells are suppressed; `--as-of` regenerates a published report.
    Anpal {
        #[arg(long)]
        year: i32,
        #[arg(long)]
        quarter: Option<u32>,
        /// A region (name or ISTAT code); default Italy.
        #[arg(long)]
        region: Option<String>,
        /// Count only events ingested at or before this instant (RFC 3339, or a date).
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ExportKind {
    /// The cohort file: one row per person and registration spell entering in the period, with
    /// the export pseudonym, the attributes, the entry month, the days to each stage, days to
    /// placement and the censoring flag, k-anonymous at the suppression threshold (Parquet; its
    /// metadata holds the parameters and the command that regenerates it).
    Cohort {
        /// First entry date (YYYY-MM-DD) [default: 1 January of the latest event's year].
        #[arg(long)]
        from: Option<String>,
        /// Last entry date [default: the latest event's date].
        #[arg(long)]
        to: Option<String>,
        /// What enters a spell in the cohort: its start (`registration`) or its first pact
        /// (`pact`, the cohort of the placement KPIs).
        #[arg(long, default_value = "registration")]
        entry: String,
        /// The territorial filters apply to the entry event.
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum UsersAction {
    /// Add a user (or replace one of the same name). Prints a generated password once, unless
    /// --password-stdin reads one (at least 12 characters).
    Add {
        name: String,
        #[arg(long, value_parser = ["admin", "manager", "evaluator", "viewer"])]
        role: String,
        /// A manager's regions (names or ISTAT codes), comma-separated.
        #[arg(long)]
        region: Option<String>,
        /// A manager's provinces (siglas), comma-separated.
        #[arg(long)]
        province: Option<String>,
        /// A manager's CPIs (codes), comma-separated.
        #[arg(long)]
        cpi: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every user with role and scope (never a password or token).
    List,
    Remove {
        name: String,
    },
    /// Create an API token for a user (`Authorization: Bearer TOKEN`); printed once. Its label
    /// names it for `mirato users token revoke NAME LABEL`.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Token {
        #[command(subcommand)]
        revoke: Option<TokenAction>,
        #[arg(required = true)]
        name: Option<String>,
        #[arg(long, default_value = "api")]
        label: String,
    },
}

#[derive(Subcommand, Debug)]
enum TokenAction {
    /// Revoke a user's token by its label: the server refuses it from its next request.
    Revoke { name: String, label: String },
}

#[derive(Subcommand, Debug)]
enum JobsAction {
    /// Every job with its schedule (Europe/Rome) and next run.
    List,
    /// Run one job now, with its retries.
    Run { name: String },
}

#[derive(Copy, Clone, Debug, ValueEnum)]
enum FileFormat {
    Csv,
    Jsonl,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq)]
enum KpiFormat {
    Table,
    Json,
    Csv,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq)]
enum ReportFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    // Store, quarantine, ledger, views, reports and exports hold person-level data: owner only.
    // SAFETY: umask only sets this process's file-creation mask; no other thread runs yet.
    unsafe { libc::umask(0o077) };
    tune_libc_malloc();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MIRATO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// zstd (C code, so the system allocator) creates and frees a compression context per Parquet
/// column chunk; by default glibc gives that memory back to the kernel each time, and the next
/// context faults fresh zeroed pages in. Keeping it is worth about a tenth of ingest time.
fn tune_libc_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
    }
}

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc hands freed memory back to the OS 10 ms after the last use by default, so each
/// query's large buffers fault in fresh zeroed pages: up to a third of a heavy KPI's CPU time on
/// the 20-million-event store (59,000 page faults for a few runs of one KPI, 3,000 without).
/// Keeping freed memory for reuse holds the process at its working-set peak, which the server
/// reaches at every warm-up anyway; so only the server does it (batch commands keep their lower
/// peak: `kpi --all` 1.1-1.4 GiB against 1.6-2.1 GiB). `MIMALLOC_PURGE_DELAY` still overrides.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option before the server's threads start.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

fn key(cli_key: &Option<PathBuf>, data_dir: &Path) -> anyhow::Result<Key> {
    let path = cli_key.clone().unwrap_or_else(privacy::default_key_path);
    Ok(Key::load_or_create(&path, data_dir)?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = mirato::config::load(cli.config.as_deref())?;
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    let key_file = cli
        .key_file
        .clone()
        .or_else(|| config.key_file())
        .unwrap_or_else(privacy::default_key_path);
    let cli_key = Some(key_file.clone());
    match cli.command {
        Command::Generate {
            persons,
            seed,
            out,
            format,
            gzip,
            start,
            end,
            error_rate,
            duplicate_rate,
        } => {
            anyhow::ensure!(start <= end, "--start must not be after --end");
            let summary = generate::generate(&GenerateOptions {
                persons,
                seed,
                out: out.clone(),
                format: match format {
                    FileFormat::Csv => OutputFormat::Csv,
                    FileFormat::Jsonl => OutputFormat::Jsonl,
                },
                gzip,
                start,
                end,
                error_rate,
                duplicate_rate,
                progress: std::io::stderr().is_terminal(),
            })?;
            println!(
                "wrote {} events for {} persons in {} files under {} ({} invalid and {} duplicate rows on purpose)",
                summary.events,
                summary.persons,
                summary.files.len(),
                out.display(),
                summary.invalid_rows,
                summary.duplicate_rows
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { paths, format } => {
            let (code, _) = ingest_paths(&data_dir, &cli_key, &paths, format)?;
            Ok(code)
        }
        Command::Kpi {
            id,
            list,
            all,
            passes,
            cell_keys,
            explain,
            query_file,
            from,
            to,
            by,
            filter,
            format,
        } => {
            if list {
                for k in mirato::query::catalog() {
                    println!("{:<28} {:<15} {}", k.id, k.kind.as_str(), k.label);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let id = id.unwrap_or_default();
            let raw = filter.raw(from, to, by);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the query runtime")?;
            if all {
                return runtime.block_on(run_catalogue(&data_dir, &raw, format, passes, cell_keys));
            }
            if explain {
                let sql = query_file
                    .map(|f| {
                        std::fs::read_to_string(&f)
                            .with_context(|| format!("cannot read {}", f.display()))
                    })
                    .transpose()?;
                let plan = runtime.block_on(async {
                    let engine = Engine::open(&data_dir)?;
                    engine.explain_raw(&id, &raw, sql, cell_keys).await
                })?;
                print!("{plan}");
                return Ok(ExitCode::SUCCESS);
            }
            let result = runtime.block_on(async {
                let engine = Engine::open(&data_dir)?;
                engine.run_raw(&id, &raw).await
            });
            match result {
                Ok(r) => {
                    match format {
                        KpiFormat::Table => print!("{}", output::to_table(&r)),
                        KpiFormat::Json => println!("{}", output::to_json(&r)),
                        KpiFormat::Csv => print!("{}", mirato::csvfile::result(&r)),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if e.is_user_error() => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Status => {
            print!("{}", status::render(&data_dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { server } => {
            serve(&data_dir, &key_file, &config, &server)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Users { action } => users(&config, action),
        Command::Report {
            kind:
                ReportKind::Anpal {
                    year,
                    quarter,
                    region,
                    as_of,
                    out,
                },
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the query runtime")?;
            let opts = mirato::report::AnpalOptions {
                year,
                quarter,
                region,
                as_of,
                threshold: config.auth.suppression_threshold,
                scope: None,
            };
            let sheets = runtime.block_on(async {
                let engine = Engine::open(&data_dir).map_err(mirato::report::ReportError::from)?;
                mirato::report::anpal(&engine, &opts).await
            });
            match sheets {
                Ok(sheets) => {
                    for p in mirato::report::write(&sheets, &out)? {
                        println!("{}", p.display());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(mirato::report::ReportError::Bad(m)) => {
                    eprintln!("error: {m}");
                    Ok(ExitCode::from(2))
                }
                Err(mirato::report::ReportError::Query(e)) if e.is_user_error() => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Export {
            kind:
                ExportKind::Cohort {
                    from,
                    to,
                    entry,
                    filter,
                    out,
                },
        } => {
            let raw = filter.raw(from, to, None);
            let k = config.auth.suppression_threshold;
            export_cohort(&data_dir, &key_file, &entry, &raw, &out, k)
        }
        Command::Config => {
            print!("{}", mirato::config::DEFAULTS);
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs { action } => {
            let jobs = mirato::jobs::Jobs::new(&config, data_dir.clone(), key_file.clone());
            match action {
                JobsAction::List => {
                    for j in jobs.list() {
                        let next = j
                            .next_run
                            .as_deref()
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| {
                                t.with_timezone(&chrono_tz::Europe::Rome)
                                    .format("%d/%m/%Y %H:%M:%S")
                                    .to_string()
                            })
                            .unwrap_or_else(|| "-".into());
                        let schedule = if j.schedule.is_empty() {
                            "-"
                        } else {
                            &j.schedule
                        };
                        println!(
                            "{:<8} {:<16} next {:<19}  {}",
                            j.name, schedule, next, j.description
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                JobsAction::Run { name } => {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .enable_all()
                        .build()
                        .context("cannot start the job runtime")?;
                    match runtime.block_on(jobs.run(&name)) {
                        Err(e) => {
                            eprintln!("error: {e}");
                            Ok(ExitCode::from(2))
                        }
                        Ok(mirato::jobs::RunOutcome::Ok { rows, attempts }) => {
                            println!("{name}: ok, {rows} rows, {attempts} attempt(s)");
                            Ok(ExitCode::SUCCESS)
                        }
                        Ok(mirato::jobs::RunOutcome::Failed { error, attempts }) => {
                            eprintln!("{name}: failed after {attempts} attempt(s): {error}");
                            Ok(ExitCode::FAILURE)
                        }
                        Ok(mirato::jobs::RunOutcome::Skipped) => {
                            println!("{name}: already running");
                            Ok(ExitCode::SUCCESS)
                        }
                    }
                }
            }
        }
        Command::Demo {
            sample_dir,
            no_serve,
            server,
        } => {
            let empty = std::fs::read_dir(&sample_dir)
                .map(|mut d| {
                    !d.any(|e| {
                        e.ok()
                            .and_then(|e| ingest::Format::from_path(&e.path()))
                            .is_some()
                    })
                })
                .unwrap_or(true);
            if empty {
                println!("generating sample data into {}", sample_dir.display());
                generate::generate(&GenerateOptions {
                    persons: 7_000,
                    seed: 42,
                    out: sample_dir.clone(),
                    format: OutputFormat::Csv,
                    gzip: true,
                    start: NaiveDate::from_ymd_opt(2021, 1, 1).expect("date"),
                    end: NaiveDate::from_ymd_opt(2025, 12, 31).expect("date"),
                    error_rate: 0.001,
                    duplicate_rate: 0.001,
                    progress: std::io::stderr().is_terminal(),
                })?;
            }
            let (code, _) = ingest_paths(
                &data_dir,
                &cli_key,
                std::slice::from_ref(&sample_dir),
                ReportFormat::Text,
            )?;
            // The sample comes as 100 files with a few events in every month each: merged as
            // the nightly compaction would, the figures and the server's shared views read
            // some 60 files instead of 1,200 (the server readies its views in about 2 s
            // instead of 15).
            {
                let store = mirato::store::Store::open(&data_dir)?;
                let r = mirato::compact::compact(
                    &store,
                    &mirato::compact::CompactOptions {
                        min_files: config.jobs.compact.min_files,
                    },
                )?;
                if r.files_before > r.files_after {
                    println!(
                        "compacted: {} files merged into {}",
                        r.files_before, r.files_after
                    );
                }
            }
            println!();
            print!("{}", status::render(&data_dir)?);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the query runtime")?;
            runtime.block_on(async {
                let engine = Engine::open(&data_dir)?;
                for id in [
                    "registered_stock",
                    "acceptance_rate",
                    "hires",
                    "placement_rate_180",
                ] {
                    let r = engine.run_raw(id, &RawParams::default()).await?;
                    println!();
                    print!("{}", output::to_table(&r));
                }
                anyhow::Ok(())
            })?;
            println!("\nmore: `mirato kpi --list`, then `mirato kpi ID --by region`");
            if !no_serve {
                println!();
                let store = mirato::auth::UserStore::new(config.users_file());
                if store.load()?.is_empty() {
                    let pw = store.add(
                        "admin",
                        mirato::auth::Role::Admin,
                        &Default::default(),
                        None,
                    )?;
                    println!(
                        "first start: created the user 'admin' with password {pw}\n(shown only now; kept as an argon2 hash in {}; more users: `mirato users add`)",
                        store.path.display()
                    );
                }
                serve(&data_dir, &key_file, &config, &server)?;
            }
            Ok(code)
        }
    }
}

fn users(config: &mirato::config::Config, action: UsersAction) -> anyhow::Result<ExitCode> {
    use mirato::auth::{Role, Scope, UserStore};
    let store = UserStore::new(config.users_file());
    let list = |s: Option<String>| mirato::list::parse(s.as_deref());
    match action {
        UsersAction::Add {
            name,
            role,
            region,
            province,
            cpi,
            password_stdin,
        } => {
            let role = Role::parse(&role).expect("clap checked the role");
            let scope = Scope {
                regions: list(region),
                provinces: list(province),
                cpis: list(cpi),
            };
            let given = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\n', '\r']).to_owned())
            } else {
                None
            };
            match store.add(&name, role, &scope, given.as_deref()) {
                Ok(pw) => {
                    if given.is_none() {
                        println!("user '{name}' ({}) added; password: {pw}", role.as_str());
                    } else {
                        println!("user '{name}' ({}) added", role.as_str());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(mirato::auth::users::UserError::Bad(m)) => {
                    eprintln!("error: {m}");
                    Ok(ExitCode::from(2))
                }
                Err(e) => Err(e.into()),
            }
        }
        UsersAction::List => {
            for u in store.load()? {
                println!(
                    "{:<20} {:<10} {:<40} {} token(s)",
                    u.name,
                    u.role.as_str(),
                    u.scope.describe(),
                    u.tokens.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        UsersAction::Remove { name } => {
            if store.remove(&name)? {
                println!("user '{name}' removed");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: no user '{name}'");
                Ok(ExitCode::from(2))
            }
        }
        UsersAction::Token {
            revoke: Some(TokenAction::Revoke { name, label }),
            ..
        } => match store.revoke_token(&name, &label) {
            Ok(_) => {
                println!("token '{label}' of '{name}' revoked");
                Ok(ExitCode::SUCCESS)
            }
            Err(mirato::auth::users::UserError::Bad(m)) => {
                eprintln!("error: {m}");
                Ok(ExitCode::from(2))
            }
            Err(e) => Err(e.into()),
        },
        UsersAction::Token { name, label, .. } => match store.add_token(
            name.as_deref()
                .expect("clap requires a name without a subcommand"),
            &label,
        ) {
            Ok(t) => {
                println!("{t}");
                Ok(ExitCode::SUCCESS)
            }
            Err(mirato::auth::users::UserError::Bad(m)) => {
                eprintln!("error: {m}");
                Ok(ExitCode::from(2))
            }
            Err(e) => Err(e.into()),
        },
    }
}

fn serve(
    data_dir: &Path,
    key_file: &Path,
    config: &mirato::config::Config,
    server: &ServerArgs,
) -> anyhow::Result<()> {
    keep_freed_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the server runtime")?;
    let addr = match server.addr {
        Some(a) => a,
        None => config.server.addr.parse()?,
    };
    runtime.block_on(mirato::server::serve(mirato::server::ServeOptions {
        data_dir: data_dir.to_path_buf(),
        key_file: key_file.to_path_buf(),
        dashboards: server.dashboards.clone().or_else(|| config.dashboards()),
        addr,
        config: config.clone(),
    }))
}

/// Runs every KPI once with the same parameters: a smoke test of the catalogue on real data and
/// the timing source of `benches/kpi.sh`.
async fn run_catalogue(
    data_dir: &Path,
    raw: &RawParams,
    format: KpiFormat,
    passes: u32,
    cell_keys: bool,
) -> anyhow::Result<ExitCode> {
    let engine = Engine::open(data_dir)?;
    let mut started = std::time::Instant::now();
    let mut timings = Vec::new();
    let order = mirato::query::catalog();
    for (i, def) in std::iter::repeat_n(order, passes.max(1) as usize)
        .flatten()
        .enumerate()
    {
        if i % order.len() == 0 {
            started = std::time::Instant::now();
            timings.clear();
        }
        let t = std::time::Instant::now();
        let r = match mirato::query::Params::parse(def, raw) {
            Ok(mut p) => {
                p.cell_keys = cell_keys;
                engine.run(def, &p).await
            }
            Err(e) => Err(e),
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        match r {
            Ok(r) => {
                timings.push(serde_json::json!({"kpi": def.id, "ms": ms, "rows": r.rows.len()}))
            }
            Err(e) => {
                eprintln!("error: {}: {e}", def.id);
                return Ok(ExitCode::from(if e.is_user_error() { 2 } else { 3 }));
            }
        }
    }
    let total = started.elapsed().as_secs_f64() * 1000.0;
    if format == KpiFormat::Json {
        println!(
            "{}",
            serde_json::json!({"total_ms": total, "kpis": timings})
        );
    } else {
        for t in &timings {
            println!(
                "{:<28} {:>9.1} ms {:>6} rows",
                t["kpi"].as_str().unwrap_or(""),
                t["ms"].as_f64().unwrap_or(0.0),
                t["rows"]
            );
        }
        println!("{:<28} {:>9.1} ms", "total", total);
    }
    Ok(ExitCode::SUCCESS)
}

fn ingest_paths(
    data_dir: &Path,
    key_file: &Option<PathBuf>,
    paths: &[PathBuf],
    format: ReportFormat,
) -> anyhow::Result<(ExitCode, Vec<FileReport>)> {
    let key = key(key_file, data_dir)?;
    let store = Store::open(data_dir)
        .with_context(|| format!("the store in {} is unusable", data_dir.display()))?;
    let files = ingest::collect_inputs(paths)?;
    let mut ingester = Ingester::new(&store, key)?;
    ingester.progress = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let reports = ingester.ingest_files(&files, |report| match (report, format) {
        (_, ReportFormat::Json) => println!(
            "{}",
            serde_json::to_string(report).expect("reports serialise")
        ),
        (
            FileReport::Read {
                file,
                read,
                stored,
                duplicates,
                rejected,
                ..
            },
            ReportFormat::Text,
        ) => println!(
            "{file}: read {read}, stored {stored}, duplicates {duplicates}, rejected {rejected}"
        ),
        (FileReport::Failed { file, error }, ReportFormat::Text) => {
            println!("{file}: REJECTED WHOLE, nothing stored: {error}")
        }
    })?;
    let failed = reports
        .iter()
        .any(|r| matches!(r, FileReport::Failed { .. }));
    if format == ReportFormat::Text {
        print!(
            "{}",
            status::ingest_summary(&reports, started.elapsed(), data_dir)
        );
    }
    Ok((
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
        reports,
    ))
}

/// `mirato export cohort`: user mistakes exit 2 with one sentence, like `mirato kpi`.
fn export_cohort(
    data_dir: &Path,
    key_file: &Path,
    entry: &str,
    raw: &RawParams,
    out: &Path,
    k: u64,
) -> anyhow::Result<ExitCode> {
    use mirato::cohort;
    // The cohort takes the filters of the outcome KPIs (and no breakdown).
    let def = mirato::query::find("time_to_placement").expect("in the catalogue");
    let params = mirato::query::Params::parse(def, raw);
    let (params, entry) = match (params, mirato::query::Entry::parse(entry)) {
        (Ok(p), Ok(e)) => (p, e),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // The key is never created here: a new key would give pseudonyms that match no earlier
    // export.
    mirato::auth::check_key_file(key_file).map_err(|e| anyhow::anyhow!(e))?;
    let key = mirato::privacy::Key::load_or_create(key_file, data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the query runtime")?;
    let started = std::time::Instant::now();
    let result = runtime.block_on(async {
        let engine = Engine::open(data_dir)?;
        engine.cohort(&params, entry).await
    });
    let c = match result {
        Ok(c) => c,
        Err(e) if e.is_user_error() => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let prov = cohort::Provenance::for_cohort(&c).with_k(k);
    let written = cohort::write_file(&c, &key, &prov, out)?;
    eprintln!(
        "{} spells ({} entry {} to {}, as of {}, data version {}) written to {} in {:.1} s",
        written.rows,
        entry.as_str(),
        c.params.from,
        c.params.to,
        c.params.as_of,
        c.params.data_version,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("{}", written.anonymity.summary());
    eprintln!("{}", written.anonymity.detail());
    eprintln!("regenerate with: {}", prov.command);
    Ok(ExitCode::SUCCESS)
}
