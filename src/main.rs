//! The `mirato` command line, one concern read top to bottom: its arguments (clap), `main` with
//! the one mapping from outcome to exit code, one short `cmd_*` function per command over the
//! library, and the helpers they share (the ingest report, the catalogue timing, progress on a
//! terminal). One tokio runtime serves every command. Exit codes: 0 done, 1 a file or a job
//! failed (and was reported), 2 a mistake in the request (said in one sentence), 3 anything else.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio::runtime::Runtime;

use mirato::app::Setup;
use mirato::config::Config;
use mirato::generate::{self, GenerateOptions, OutputFormat};
use mirato::ingest::{self, FileReport, Ingester};
use mirato::privacy::{self, Key};
use mirato::query::{Engine, QueryError, RawParams, output};
use mirato::store::Store;
use mirato::{demo, status};

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
    Generate(GenerateArgs),
    /// Ingest CSV / JSONL files (or folders of them, gzip or not) into the store.
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// `text` for a readable summary, `json` for one object per file.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Compute a KPI of the catalogue (KPIS.md).
    Kpi(KpiArgs),
    /// Show what the store holds.
    Status,
    /// Verify the store against the events table and the ledger: every file there, of its
    /// recorded size, readable to its last row, of the events' schema, in its partition; the
    /// ledger readable and adding up. Exit code 1 when something is wrong
    Check {
        /// Rebuild what can be rebuilt: ledger entries from the table's log, stored views by
        /// removing them. Event files are never removed
        #[arg(long)]
        repair: bool,
        /// `text`, or `json` for one object
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
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
    Demo(DemoArgs),
    /// The processes of a Ballista cluster that runs the KPI queries (`engine.ballista`).
    #[cfg(feature = "distributed")]
    Cluster {
        #[command(subcommand)]
        role: ClusterRole,
    },
}

#[cfg(feature = "distributed")]
#[derive(Subcommand, Debug)]
enum ClusterRole {
    /// The scheduler: plans the queries and hands their tasks to the executors.
    Scheduler {
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        #[arg(long, default_value_t = 50050)]
        port: u16,
        /// Seconds without a heartbeat after which an executor is lost and its tasks rerun.
        #[arg(long, default_value_t = 180)]
        executor_timeout: u64,
    },
    /// An executor: runs tasks, and serves their output over Arrow Flight. It reads the
    /// store's files at the paths the engine names, so it runs where they are (or shared).
    Executor {
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Arrow Flight port.
        #[arg(long, default_value_t = 50051)]
        port: u16,
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// The scheduler, host:port.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// Where the executor keeps its shuffle files (they hold pseudonyms: owner-only).
        #[arg(long)]
        work_dir: PathBuf,
        /// Tasks at once; 0: every core.
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 60)]
        heartbeat: u64,
    },
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// How many persons to simulate (about 22 events each).
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
}

#[derive(Args, Debug)]
struct KpiArgs {
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
    #[command(flatten)]
    period: PeriodArgs,
    /// One or two breakdowns, comma-separated (e.g. region,gender).
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    filter: FilterArgs,
    #[arg(long, value_enum, default_value_t = KpiFormat::Table)]
    format: KpiFormat,
}

#[derive(Args, Debug)]
struct DemoArgs {
    #[arg(long, default_value = "sample-data")]
    sample_dir: PathBuf,
    /// Stop after the ingest and the headline figures instead of serving.
    #[arg(long)]
    no_serve: bool,
    /// A line for each sample file ingested, instead of a progress bar.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// The instant the figures are counted at: shared by `kpi`, `report` and `export`.
#[derive(Args, Debug, Clone)]
struct AsOfArgs {
    /// Count only events ingested at or before this instant (RFC 3339, or a date).
    #[arg(long)]
    as_of: Option<String>,
}

/// The period and instant of a KPI or a cohort file.
#[derive(Args, Debug, Clone)]
struct PeriodArgs {
    /// First day of the period (YYYY-MM-DD) [default: 1 January of the latest event's year].
    #[arg(long)]
    from: Option<String>,
    /// Last day of the period [default: the latest event's date].
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    as_of: AsOfArgs,
}

/// The territorial filters that KPIs and the cohort file take.
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
}

/// The engine's raw parameters from the command line's.
fn raw_params(period: PeriodArgs, by: Option<String>, filter: FilterArgs) -> RawParams {
    RawParams {
        from: period.from,
        to: period.to,
        by: mirato::list::parse(by.as_deref()),
        region: filter.region,
        province: filter.province,
        cpi: filter.cpi,
        as_of: period.as_of.as_of,
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
    /// sheet beside it. Every count is perturbed (cell keys); `--as-of` regenerates a published
    /// report.
    Anpal {
        #[arg(long)]
        year: i32,
        #[arg(long)]
        quarter: Option<u32>,
        /// A region (name or ISTAT code); default Italy.
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        as_of: AsOfArgs,
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
        /// The period is that of the entry dates.
        #[command(flatten)]
        period: PeriodArgs,
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

/// See `mimalloc` in Cargo.toml: a long-running server's memory stays near what it uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    match try_main(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx::new(&cli)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    match cli.command {
        Command::Generate(args) => cmd_generate(args),
        Command::Ingest { paths, format } => cmd_ingest(&ctx, &paths, format),
        Command::Kpi(args) => cmd_kpi(&ctx, &rt, args),
        Command::Status => cmd_status(&ctx),
        Command::Check { repair, format } => cmd_check(&ctx, repair, format),
        Command::Jobs { action } => cmd_jobs(&ctx, &rt, action),
        Command::Config => cmd_config(),
        Command::Report { kind } => cmd_report(&ctx, &rt, kind),
        Command::Export { kind } => cmd_export(&ctx, &rt, kind),
        Command::Users { action } => cmd_users(&ctx, action),
        Command::Serve { server } => cmd_serve(&ctx, &rt, &server),
        Command::Demo(args) => cmd_demo(&ctx, &rt, args),
        #[cfg(feature = "distributed")]
        Command::Cluster { role } => cmd_cluster(&ctx, &rt, role),
    }
}

#[cfg(feature = "distributed")]
fn cmd_cluster(ctx: &Ctx, rt: &Runtime, role: ClusterRole) -> anyhow::Result<ExitCode> {
    use mirato::cluster::{self, ExecutorOptions, SchedulerOptions};
    // The record keys' secret: the processes compute `cell_key` as the engine does (a working
    // copy of a bucket takes the bucket's first).
    mirato::store::remote::refresh(&ctx.data_dir)?;
    let seed = mirato::recordkey::load_or_create(&ctx.data_dir).with_context(|| {
        format!(
            "cannot read the store's secret in {}",
            ctx.data_dir.display()
        )
    })?;
    match role {
        ClusterRole::Scheduler {
            bind,
            port,
            executor_timeout,
        } => rt.block_on(cluster::scheduler(
            SchedulerOptions {
                bind,
                port,
                executor_timeout_seconds: executor_timeout,
            },
            seed,
        ))?,
        ClusterRole::Executor {
            bind,
            port,
            grpc_port,
            scheduler,
            work_dir,
            vcores,
            heartbeat,
        } => {
            let (host, sport) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
                .ok_or_else(|| Usage(format!("--scheduler '{scheduler}' is not host:port")))?;
            mirato::store::create_private_dir(&work_dir)
                .with_context(|| format!("cannot create {}", work_dir.display()))?;
            rt.block_on(cluster::executor(
                ExecutorOptions {
                    bind,
                    port,
                    grpc_port,
                    scheduler_host: host,
                    scheduler_port: sport,
                    work_dir,
                    vcores,
                    heartbeat_seconds: heartbeat,
                },
                seed,
            ))?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A mistake in the request that no library error names (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// The exit code of a failed command: 2 when the request was at fault (a parameter, a name),
/// 3 otherwise.
fn exit_code(e: &anyhow::Error) -> u8 {
    use mirato::auth::users::UserError;
    use mirato::report::ReportError;
    let request = e.downcast_ref::<Usage>().is_some()
        || e.downcast_ref::<mirato::jobs::UnknownJob>().is_some()
        || e.downcast_ref::<QueryError>()
            .is_some_and(QueryError::is_user_error)
        || matches!(e.downcast_ref::<UserError>(), Some(UserError::Bad(_)))
        || match e.downcast_ref::<ReportError>() {
            Some(ReportError::Bad(_)) => true,
            Some(ReportError::Query(q)) => q.is_user_error(),
            _ => false,
        };
    if request { 2 } else { 3 }
}

/// The system allocator serves every allocation: against mimalloc it held the KPI catalogue on
/// 20 million events at 0.9 GiB instead of 1.6 (mimalloc kept freed pages), and ran the catalogue
/// and the ingest as fast (`benches/RESULTS.md`). Two thresholds keep what a pass frees for the
/// next one: zstd's per-column contexts and a query's large buffers would otherwise be handed
/// back to the kernel each time and fault in fresh zeroed pages (about a tenth of ingest time).
/// glibc's own `MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_` still win.
fn tune_libc_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (var, option, bytes) in [
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 256 << 20),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 64 << 20),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: mallopt only changes an allocator threshold; called before any other
            // thread runs.
            unsafe { libc::mallopt(option, bytes) };
        }
    }
}

/// What every command works with: the configuration, the data folder and the key file.
struct Ctx {
    config: Config,
    data_dir: PathBuf,
    key_file: PathBuf,
}

impl Ctx {
    fn new(cli: &Cli) -> anyhow::Result<Ctx> {
        let config = mirato::config::load(cli.config.as_deref())?;
        let data_dir = cli
            .data_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.clone());
        // An s3:// store is worked on through its local working copy.
        let data_dir = mirato::store::remote::resolve(&data_dir, &config.s3)?;
        let key_file = cli
            .key_file
            .clone()
            .or_else(|| config.key_file())
            .unwrap_or_else(privacy::default_key_path);
        Ok(Ctx {
            config,
            data_dir,
            key_file,
        })
    }

    /// The query engine over the data folder, within the configured memory.
    fn engine(&self) -> Result<Engine, QueryError> {
        self.setup(None).engine()
    }

    /// The application as configured, with the dashboards of `--dashboards` when given.
    fn setup(&self, dashboards: Option<PathBuf>) -> Setup {
        let mut setup = Setup::new(&self.config, self.data_dir.clone(), self.key_file.clone());
        if dashboards.is_some() {
            setup.dashboards = dashboards;
        }
        setup
    }
}

fn cmd_generate(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.start <= a.end, "--start must not be after --end");
    let summary = generate::generate(&GenerateOptions {
        persons: a.persons,
        seed: a.seed,
        out: a.out.clone(),
        format: match a.format {
            FileFormat::Csv => OutputFormat::Csv,
            FileFormat::Jsonl => OutputFormat::Jsonl,
        },
        gzip: a.gzip,
        start: a.start,
        end: a.end,
        error_rate: a.error_rate,
        duplicate_rate: a.duplicate_rate,
        progress: std::io::stderr().is_terminal(),
    })?;
    println!(
        "wrote {} events for {} persons in {} files under {} ({} invalid and {} duplicate rows on purpose)",
        summary.events,
        summary.persons,
        summary.files.len(),
        a.out.display(),
        summary.invalid_rows,
        summary.duplicate_rows
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_ingest(ctx: &Ctx, paths: &[PathBuf], format: ReportFormat) -> anyhow::Result<ExitCode> {
    let shown = match format {
        ReportFormat::Text => Shown::Lines,
        ReportFormat::Json => Shown::Json,
    };
    ingest_paths(ctx, paths, shown)
}

fn cmd_kpi(ctx: &Ctx, rt: &Runtime, a: KpiArgs) -> anyhow::Result<ExitCode> {
    if a.list {
        for k in mirato::query::catalog() {
            println!("{:<28} {:<15} {}", k.id, k.kind.as_str(), k.label);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let raw = raw_params(a.period, a.by, a.filter);
    if a.all {
        return rt.block_on(run_catalogue(ctx, &raw, a.format, a.passes, a.cell_keys));
    }
    let id = a.id.unwrap_or_default();
    if a.explain {
        let sql = a
            .query_file
            .map(|f| {
                std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))
            })
            .transpose()?;
        let plan = rt.block_on(async {
            let engine = ctx.engine()?;
            engine.explain_raw(&id, &raw, sql, a.cell_keys).await
        })?;
        print!("{plan}");
        return Ok(ExitCode::SUCCESS);
    }
    let r = rt.block_on(async {
        let engine = ctx.engine()?;
        engine.run_raw(&id, &raw).await
    })?;
    match a.format {
        KpiFormat::Table => print!("{}", output::to_table(&r)),
        KpiFormat::Json => println!("{}", output::to_json(&r)),
        KpiFormat::Csv => print!("{}", mirato::csvfile::result(&r)),
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_status(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    print!("{}", status::render(&ctx.data_dir)?);
    Ok(ExitCode::SUCCESS)
}

fn cmd_check(ctx: &Ctx, repair: bool, format: ReportFormat) -> anyhow::Result<ExitCode> {
    use mirato::store::{Layout, check, write_lock};
    let layout = Layout::new(&ctx.data_dir);
    if !layout.ledger().exists() {
        anyhow::bail!(Usage(format!("no store in {}", ctx.data_dir.display())));
    }
    // A repair writes, so no other writer may run meanwhile. Only the lock: opening the store
    // would read the ledger the repair is there to mend.
    let lock = if repair {
        Some(write_lock(&layout)?)
    } else {
        None
    };
    let report = check::check(&layout, repair)?;
    drop(lock);
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        ReportFormat::Text => {
            println!(
                "checked {} event files ({} rows), {} ledger entries, {} quarantine files, {} stored views",
                report.event_files,
                report.event_rows,
                report.ledger_entries,
                report.quarantine_files,
                report.view_files
            );
            for f in &report.findings {
                match &f.repaired {
                    Some(how) => println!("repaired  {}: {} ({how})", f.path, f.problem),
                    None => println!("WRONG     {}: {}", f.path, f.problem),
                }
            }
            match report.unrepaired() {
                0 if report.findings.is_empty() => println!("the store is sound"),
                0 => println!("every problem found was repaired"),
                n => println!(
                    "{n} problem(s) left{}",
                    if repair {
                        ""
                    } else {
                        "; `mirato check --repair` rebuilds what can be rebuilt"
                    }
                ),
            }
        }
    }
    Ok(if report.unrepaired() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_jobs(ctx: &Ctx, rt: &Runtime, action: JobsAction) -> anyhow::Result<ExitCode> {
    use mirato::jobs::RunOutcome;
    let jobs = ctx.setup(None).jobs(Vec::new());
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
        JobsAction::Run { name } => match rt.block_on(jobs.run(&name))? {
            RunOutcome::Ok { rows, attempts } => {
                println!("{name}: ok, {rows} rows, {attempts} attempt(s)");
                Ok(ExitCode::SUCCESS)
            }
            RunOutcome::Failed { error, attempts } => {
                eprintln!("{name}: failed after {attempts} attempt(s): {error}");
                Ok(ExitCode::FAILURE)
            }
            RunOutcome::Skipped => {
                println!("{name}: already running");
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}

fn cmd_config() -> anyhow::Result<ExitCode> {
    print!("{}", mirato::config::DEFAULTS);
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(ctx: &Ctx, rt: &Runtime, kind: ReportKind) -> anyhow::Result<ExitCode> {
    use mirato::report::{self, AnpalOptions, ReportError};
    let ReportKind::Anpal {
        year,
        quarter,
        region,
        as_of,
        out,
    } = kind;
    let opts = AnpalOptions {
        year,
        quarter,
        region,
        as_of: as_of.as_of,
        threshold: ctx.config.auth.suppression_threshold,
        scope: None,
    };
    let sheets = rt.block_on(async {
        let engine = ctx.engine().map_err(ReportError::from)?;
        report::anpal(&engine, &opts).await
    })?;
    for p in report::write(&sheets, &out)? {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `mirato export cohort`.
fn cmd_export(ctx: &Ctx, rt: &Runtime, kind: ExportKind) -> anyhow::Result<ExitCode> {
    use mirato::cohort;
    let ExportKind::Cohort {
        period,
        entry,
        filter,
        out,
    } = kind;
    // The cohort takes the filters of the outcome KPIs (and no breakdown).
    let def = mirato::query::find("time_to_placement").expect("in the catalogue");
    let params = mirato::query::Params::parse(def, &raw_params(period, None, filter))?;
    let entry = mirato::query::Entry::parse(&entry)?;
    // The key is never created here: a new key would give pseudonyms that match no earlier
    // export.
    mirato::auth::check_key_file(&ctx.key_file).map_err(|e| anyhow::anyhow!(e))?;
    let key = Key::load_or_create(&ctx.key_file, &ctx.data_dir)?;
    let started = std::time::Instant::now();
    let c = rt.block_on(async {
        let engine = ctx.engine()?;
        engine.cohort(&params, entry).await
    })?;
    let k = ctx.config.auth.suppression_threshold;
    let prov = cohort::Provenance::for_cohort(&c).with_k(k);
    let written = cohort::write_file(&c, &key, &prov, &out)?;
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

fn cmd_users(ctx: &Ctx, action: UsersAction) -> anyhow::Result<ExitCode> {
    use mirato::auth::{Role, Scope, UserStore};
    let store = UserStore::new(ctx.config.users_file());
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
            let pw = store.add(&name, role, &scope, given.as_deref())?;
            if given.is_none() {
                println!("user '{name}' ({}) added; password: {pw}", role.as_str());
            } else {
                println!("user '{name}' ({}) added", role.as_str());
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
        }
        UsersAction::Remove { name } => {
            if !store.remove(&name)? {
                return Err(Usage(format!("no user '{name}'")).into());
            }
            println!("user '{name}' removed");
        }
        UsersAction::Token {
            revoke: Some(TokenAction::Revoke { name, label }),
            ..
        } => {
            store.revoke_token(&name, &label)?;
            println!("token '{label}' of '{name}' revoked");
        }
        UsersAction::Token { name, label, .. } => {
            let name = name.expect("clap requires a name without a subcommand");
            println!("{}", store.add_token(&name, &label)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_serve(ctx: &Ctx, rt: &Runtime, server: &ServerArgs) -> anyhow::Result<ExitCode> {
    let addr = match server.addr {
        Some(a) => a,
        None => ctx.config.server.addr.parse()?,
    };
    rt.block_on(ctx.setup(server.dashboards.clone()).serve(addr))?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_demo(ctx: &Ctx, rt: &Runtime, a: DemoArgs) -> anyhow::Result<ExitCode> {
    if demo::sample_missing(&a.sample_dir) {
        println!("generating sample data into {}", a.sample_dir.display());
        demo::generate_sample(&a.sample_dir, std::io::stderr().is_terminal())?;
    }
    let shown = if a.verbose { Shown::Lines } else { Shown::Bar };
    let code = ingest_paths(ctx, std::slice::from_ref(&a.sample_dir), shown)?;
    let working = spinner("merging the month partitions");
    let r = demo::compact(&ctx.data_dir, ctx.config.jobs.compact.min_files)?;
    working.finish_and_clear();
    if r.files_before > r.files_after {
        println!(
            "compacted: {} files merged into {}",
            r.files_before, r.files_after
        );
    }
    println!();
    print!("{}", status::render(&ctx.data_dir)?);
    let working = spinner("computing the headline figures");
    let figures = rt.block_on(demo::headline(&ctx.data_dir))?;
    working.finish_and_clear();
    for r in figures {
        println!();
        print!("{}", output::to_table(&r));
    }
    println!("\nmore: `mirato kpi --list`, then `mirato kpi ID --by region`");
    if !a.no_serve {
        println!();
        if let Some((pw, users)) = demo::first_admin(ctx.config.users_file())? {
            println!(
                "first start: created the user 'admin' with password {pw}\n(shown only now; kept as an argon2 hash in {}; more users: `mirato users add`)",
                users.display()
            );
        }
        cmd_serve(ctx, rt, &a.server)?;
    }
    Ok(code)
}

/// Runs every KPI once with the same parameters: a smoke test of the catalogue on real data and
/// the timing source of `benches/kpi.sh`.
async fn run_catalogue(
    ctx: &Ctx,
    raw: &RawParams,
    format: KpiFormat,
    passes: u32,
    cell_keys: bool,
) -> anyhow::Result<ExitCode> {
    let engine = ctx.engine()?;
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
        }
        .with_context(|| def.id)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        timings.push(serde_json::json!({"kpi": def.id, "ms": ms, "rows": r.rows.len()}));
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

/// How an ingest shows its files.
#[derive(Clone, Copy, PartialEq)]
enum Shown {
    /// A line per file, then the summary (`mirato ingest`, `demo --verbose`).
    Lines,
    /// One JSON object per file.
    Json,
    /// A bar counting the files on a terminal (nothing elsewhere), then the summary (`demo`).
    Bar,
}

/// Ingests `paths`; exit code 1 when a file was rejected whole (it is reported either way).
fn ingest_paths(ctx: &Ctx, paths: &[PathBuf], shown: Shown) -> anyhow::Result<ExitCode> {
    let key = Key::load_or_create(&ctx.key_file, &ctx.data_dir)?;
    let store = Store::open(&ctx.data_dir)
        .with_context(|| format!("the store in {} is unusable", ctx.data_dir.display()))?;
    let files = ingest::collect_inputs(paths)?;
    let mut ingester = Ingester::new(&store, key)?;
    let terminal = std::io::stderr().is_terminal();
    // A bar per file (its bytes) for a listing; the count of files for the demo's bar.
    ingester.progress = terminal && shown != Shown::Bar;
    let bar = files_bar(terminal && shown == Shown::Bar, files.len());
    let started = std::time::Instant::now();
    let reports = ingester.ingest_files(&files, |report| {
        bar.inc(1);
        match (report, shown) {
            (_, Shown::Bar) => {}
            (_, Shown::Json) => println!(
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
                Shown::Lines,
            ) => println!(
                "{file}: read {read}, stored {stored}, duplicates {duplicates}, rejected {rejected}"
            ),
            (FileReport::Failed { file, error }, Shown::Lines) => {
                println!("{file}: REJECTED WHOLE, nothing stored: {error}")
            }
        }
    })?;
    bar.finish_and_clear();
    let failed: Vec<&FileReport> = reports
        .iter()
        .filter(|r| matches!(r, FileReport::Failed { .. }))
        .collect();
    if shown == Shown::Bar {
        // Without the per-file lines, a file rejected whole must still be named.
        for r in &failed {
            if let FileReport::Failed { file, error } = r {
                println!("{file}: REJECTED WHOLE, nothing stored: {error}");
            }
        }
    }
    if shown != Shown::Json {
        print!(
            "{}",
            status::ingest_summary(&reports, started.elapsed(), &ctx.data_dir)
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A bar counting ingested files on stderr, or a hidden one.
fn files_bar(enabled: bool, files: usize) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(files as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "ingesting [{bar:30}] {pos}/{len} files, {elapsed}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// A spinner on stderr while a step of some seconds runs, on a terminal only.
fn spinner(message: &'static str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
