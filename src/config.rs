//! `mirato.toml`: parsed raw (defaults, then the file, then environment variables), then
//! validated into typed settings. Every key has a default and an environment variable:
//! `MIRATO_` + the key's path in capitals joined by `_` (`jobs.ingest.schedule` →
//! `MIRATO_JOBS_INGEST_SCHEDULE`); lists take comma-separated values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The defaults, documented; `mirato config` prints the effective values.
pub const DEFAULTS: &str = r#"# mirato configuration. Every key below is the default; an environment variable overrides
# each: MIRATO_ + the key's path in capitals joined by '_', e.g. MIRATO_JOBS_INGEST_SCHEDULE.

data_dir = "data"            # the store (command-line --data-dir wins)
key_file = ""                # empty: ~/.config/mirato/hmac.key (--key-file wins)

[engine]
memory_limit = "768 MiB"     # what the query engine's joins, sorts and aggregations may hold at once, per
                             # process; beyond it they spill to disk, and a query that cannot run even
                             # so fails with a clear error. "0": no limit. 768 MiB of the 2 GiB a
                             # process is meant to stay within: at 100 million events the rest, what
                             # no pool tracks (the Parquet decoders, the batches in flight, the
                             # caches, the server), reached 1.2 GiB.
spill_dir = ""               # where queries spill; empty: <data_dir>/spill (owner-only, like the store)
views_in_memory = false      # true: the shared views held whole in memory rather than read from their
                             # files in <data_dir>/views; faster scans, at a memory cost that grows
                             # with the store
max_queries = 0              # KPI queries computed at once; the next ones wait their turn (first come,
                             # first served) rather than share the cores and the pool with every other.
                             # 0: twice the cores
ballista = ""                # df://host:50050: run the KPI queries on this Ballista scheduler (a build
                             # with --features distributed; see README, Beyond one machine); empty: here

# An s3://bucket/prefix data_dir (a build with --features s3; see README, Beyond one machine).
# Each key falls back to the usual AWS variable (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ALLOW_HTTP). Credentials are never printed or logged.
[s3]
endpoint = ""                # empty: AWS itself; e.g. http://127.0.0.1:9000 for MinIO or Ceph
region = ""                  # empty: AWS_REGION, else us-east-1
access_key_id = ""
secret_access_key = ""
allow_http = false           # true for an endpoint on plain http (a test server on loopback)
cache_dir = ""               # the local working copy; empty: ~/.cache/mirato/s3/<bucket>/<prefix>
refresh_seconds = 10         # how often a server takes in commits made by other machines

[server]
addr = "127.0.0.1:8080"      # --addr wins
dashboards = ""              # a folder of page files; empty: the built-in pages
max_wait_seconds = 50        # a page, export, API call or report still computing after this is answered
                             # 503 with Retry-After (a page reloads itself) while its computation goes
                             # on for the retry; under a reverse proxy's timeout (often 60 s). 0: no bound
max_reports = 0              # ANPAL workbooks computed at once (a hundred queries each); the next wait
                             # their turn. A workbook or cohort file asked again without as_of joins its
                             # own computation. 0: half of engine.max_queries, at least one

[auth]
users_file = ""              # empty: ~/.config/mirato/users.toml (managed by `mirato users`)
suppression_threshold = 5    # counts, and rates' denominators, below this show as "<5"; never below 3
secure_cookies = false       # true when served over TLS (a reverse proxy); X-Forwarded-Proto: https also sets it
session_hours = 8            # idle time after which a session ends
session_max_hours = 12       # time after login at which a session ends, however active
login_attempts = 5           # failed logins per user name and address, then each try waits (429),
login_window_seconds = 900   # 1 s doubling up to this; forgotten after twice this without one
audit_max_mib = 64           # the audit (data_dir/audit/audit.jsonl) starts a new file past this
audit_daily = true           # and at the first entry of each day (UTC)
audit_keep = 90              # finished audit files kept (audit.jsonl.<when>); older ones removed

# Cron expressions have six fields (second minute hour day month weekday) and are read in
# Europe/Rome time. An empty schedule disables a job's timer; `mirato jobs run NAME` still runs it.
[jobs]
shutdown_grace_seconds = 60  # on SIGTERM or Ctrl-C, how long a running job may take to finish

[jobs.ingest]
schedule = "0 */5 * * * *"   # every 5 minutes
inbox = "inbox"              # new files; done ones go to inbox/processed, rejected ones to inbox/failed
ready = "done_marker"        # take FILE once FILE.done exists; or "stable_size": once its size and
stable_seconds = 30          # mtime have not changed for this long, seen by two scans
retries = 3
backoff_seconds = 30         # doubles after each failed attempt

[jobs.compact]
schedule = "0 30 2 * * *"    # 02:30 every night
min_files = 4                # merge a month partition holding at least this many files
retries = 2
backoff_seconds = 300

[jobs.warmup]
schedule = "0 0 6 * * *"     # 06:00, and after every ingest that stored events
at_start = true              # also when the server starts
retries = 1
backoff_seconds = 60

[jobs.export]
schedule = "0 0 7 * * Mon"   # Mondays 07:00
dir = "reports"              # reports/<date>/<kpi>.csv
kpis = ["registered_stock", "applications_received", "hires", "placement_rate_180"]
by = "region"
anpal_quarterly = true       # also the ANPAL workbook of the last completed quarter, once:
                             # reports/anpal/<year>-Q<n>/mirato-anpal-<year>-q<n>.xlsx (+ CSVs)
anpal_regions = []           # and one per region listed here (names or ISTAT codes)
admins_only = false          # true: exact figures, for a folder only admins can read; otherwise
                             # perturbed like the web's (see README, Confidentiality)
retries = 3
backoff_seconds = 300
"#;

/// The smallest `engine.memory_limit` accepted: below it even small KPIs cannot run.
pub const MIN_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub key_file: String,
    pub engine: EngineConfig,
    pub s3: crate::store::remote::S3Settings,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub jobs: JobsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub users_file: String,
    pub suppression_threshold: u64,
    pub secure_cookies: bool,
    pub session_hours: u64,
    pub session_max_hours: u64,
    pub login_attempts: usize,
    pub login_window_seconds: u64,
    pub audit_max_mib: u64,
    pub audit_daily: bool,
    pub audit_keep: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub memory_limit: String,
    pub spill_dir: String,
    pub views_in_memory: bool,
    pub max_queries: usize,
    pub ballista: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: String,
    pub dashboards: String,
    pub max_wait_seconds: u64,
    pub max_reports: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    pub shutdown_grace_seconds: u64,
    pub ingest: IngestJob,
    pub compact: CompactJob,
    pub warmup: WarmupJob,
    pub export: ExportJob,
}

/// What every job has: when, and how it retries.
#[derive(Debug, Clone, Deserialize)]
pub struct Retry {
    pub retries: u32,
    pub backoff_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    DoneMarker,
    StableSize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestJob {
    pub schedule: String,
    pub inbox: PathBuf,
    pub ready: Ready,
    pub stable_seconds: u64,
    #[serde(flatten)]
    pub retry: Retry,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactJob {
    pub schedule: String,
    pub min_files: usize,
    #[serde(flatten)]
    pub retry: Retry,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupJob {
    pub schedule: String,
    pub at_start: bool,
    #[serde(flatten)]
    pub retry: Retry,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportJob {
    pub schedule: String,
    pub dir: PathBuf,
    pub kpis: Vec<String>,
    pub by: String,
    pub anpal_quarterly: bool,
    pub anpal_regions: Vec<String>,
    /// Exact figures, for a folder only admins read; otherwise perturbed as the web's.
    pub admins_only: bool,
    #[serde(flatten)]
    pub retry: Retry,
}

impl Retry {
    pub fn backoff(&self) -> Duration {
        Duration::from_secs(self.backoff_seconds)
    }
}

/// Loads `path` (when given or when `mirato.toml` exists in the working directory) over the
/// defaults, applies environment overrides, and validates.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_with(path, &env)
}

pub fn load_with(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut table: toml::Table = DEFAULTS.parse().expect("the defaults parse");
    let implicit = Path::new("mirato.toml");
    let file = match path {
        Some(p) => Some(p.to_path_buf()),
        None if implicit.exists() => Some(implicit.to_path_buf()),
        None => None,
    };
    if let Some(file) = &file {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        let over: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: file.display().to_string(),
                    message: e.message().to_owned(),
                })?;
        merge(&mut table, over, "", &file.display().to_string())?;
    }
    apply_env(&mut table, "MIRATO", env)?;
    let origin = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "configuration".into());
    let config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            origin: origin.clone(),
            message: e.message().to_owned(),
        })?;
    config
        .validate()
        .map_err(|message| ConfigError::Invalid { origin, message })?;
    Ok(config)
}

/// Overlays `over` on `base`, refusing keys the defaults do not have (a typo would otherwise be
/// silently ignored).
fn merge(
    base: &mut toml::Table,
    over: toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (k, v) in over {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o, &path, origin)?,
            (Some(slot), v) if !slot.is_table() => *slot = v,
            _ => {
                return Err(ConfigError::Invalid {
                    origin: origin.to_owned(),
                    message: format!("unknown key '{path}'; `mirato config` shows every key"),
                });
            }
        }
    }
    Ok(())
}

/// Environment overrides: each key of the table has its variable; its value is parsed as the
/// default's type.
fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    for (k, v) in table.iter_mut() {
        let name = format!("{prefix}_{}", k.to_uppercase());
        if let toml::Value::Table(t) = v {
            apply_env(t, &name, env)?;
            continue;
        }
        let Some((_, raw)) = env.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let bad = |what: &str| ConfigError::Invalid {
            origin: format!("environment variable {name}"),
            message: format!("'{raw}' is not {what}"),
        };
        *v = match v {
            toml::Value::Integer(_) => {
                toml::Value::Integer(raw.trim().parse().map_err(|_| bad("a whole number"))?)
            }
            toml::Value::Boolean(_) => {
                toml::Value::Boolean(raw.trim().parse().map_err(|_| bad("true or false"))?)
            }
            toml::Value::Array(_) => toml::Value::Array(
                crate::list::items(raw)
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            ),
            _ => toml::Value::String(raw.clone()),
        };
    }
    Ok(())
}

impl Config {
    fn validate(&self) -> Result<(), String> {
        self.server
            .addr
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                format!(
                    "server.addr '{}' is not an address such as 127.0.0.1:8080",
                    self.server.addr
                )
            })?;
        for (name, s) in self.jobs.schedules() {
            if !s.is_empty() {
                parse_cron(s).map_err(|e| format!("jobs.{name}.schedule: {e}"))?;
            }
        }
        for id in &self.jobs.export.kpis {
            if crate::query::find(id).is_none() {
                return Err(format!(
                    "jobs.export.kpis: unknown KPI '{id}'; `mirato kpi --list` shows them all"
                ));
            }
        }
        for r in &self.jobs.export.anpal_regions {
            if !crate::reference::regions()
                .iter()
                .any(|(code, name)| code == r || name == r)
            {
                return Err(format!(
                    "jobs.export.anpal_regions: unknown region '{r}'; use a name such as Lombardia or an ISTAT code"
                ));
            }
        }
        if self.auth.suppression_threshold < crate::auth::disclosure::MIN_THRESHOLD {
            return Err(format!(
                "auth.suppression_threshold is {}; the legal minimum is {}",
                self.auth.suppression_threshold,
                crate::auth::disclosure::MIN_THRESHOLD
            ));
        }
        self.memory_limit()?;
        if self.jobs.compact.min_files < 2 {
            return Err("jobs.compact.min_files must be at least 2".into());
        }
        Ok(())
    }

    /// `engine.memory_limit` in bytes (0: no limit). A pool of a few MiB would fail every
    /// query, so anything below [`MIN_MEMORY_LIMIT`] is refused rather than obeyed.
    pub fn memory_limit(&self) -> Result<u64, String> {
        let raw = self.engine.memory_limit.trim();
        let size: bytesize::ByteSize = raw.parse().map_err(|_| {
            format!("engine.memory_limit '{raw}' is not a size such as \"1 GiB\" or \"512 MiB\"")
        })?;
        let bytes = size.as_u64();
        if bytes != 0 && bytes < MIN_MEMORY_LIMIT {
            return Err(format!(
                "engine.memory_limit '{raw}' is below the minimum of {}; \"0\" means no limit",
                bytesize::ByteSize(MIN_MEMORY_LIMIT).display().iec()
            ));
        }
        Ok(bytes)
    }

    /// The query engine's memory and spill settings over `data_dir`.
    pub fn engine_settings(&self, data_dir: &Path) -> crate::query::EngineSettings {
        crate::query::EngineSettings {
            memory_limit: self.memory_limit().unwrap_or(0) as usize,
            spill_dir: if self.engine.spill_dir.is_empty() {
                data_dir.join("spill")
            } else {
                PathBuf::from(&self.engine.spill_dir)
            },
            views_in_memory: self.engine.views_in_memory,
            max_queries: match self.engine.max_queries {
                0 => crate::query::default_max_queries(),
                n => n,
            },
            ballista: (!self.engine.ballista.is_empty()).then(|| self.engine.ballista.clone()),
        }
    }

    /// The key file: the configured one, or the default beside the user's configuration.
    pub fn key_file(&self) -> Option<PathBuf> {
        (!self.key_file.is_empty()).then(|| PathBuf::from(&self.key_file))
    }

    pub fn users_file(&self) -> PathBuf {
        if self.auth.users_file.is_empty() {
            crate::auth::users::default_users_path()
        } else {
            PathBuf::from(&self.auth.users_file)
        }
    }

    /// The access settings for a server over `data_dir` (the audit lives in the data folder).
    pub fn auth_settings(&self, data_dir: &Path) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            users_file: self.users_file(),
            threshold: self.auth.suppression_threshold,
            secure_cookies: self.auth.secure_cookies,
            session_ttl: Duration::from_secs(self.auth.session_hours * 3600),
            session_max: Duration::from_secs(self.auth.session_max_hours.max(1) * 3600),
            login_attempts: self.auth.login_attempts.max(1),
            login_window: Duration::from_secs(self.auth.login_window_seconds),
            audit_file: data_dir.join("audit").join("audit.jsonl"),
            audit_rotation: crate::auth::audit::Rotation {
                max_bytes: self.auth.audit_max_mib * 1024 * 1024,
                daily: self.auth.audit_daily,
                keep: self.auth.audit_keep.max(1),
            },
        }
    }

    pub fn dashboards(&self) -> Option<PathBuf> {
        (!self.server.dashboards.is_empty()).then(|| PathBuf::from(&self.server.dashboards))
    }
}

impl JobsConfig {
    pub fn schedules(&self) -> [(&'static str, &str); 4] {
        [
            ("ingest", self.ingest.schedule.as_str()),
            ("compact", self.compact.schedule.as_str()),
            ("warmup", self.warmup.schedule.as_str()),
            ("export", self.export.schedule.as_str()),
        ]
    }
}

/// A six-field cron expression (seconds first), as tokio-cron-scheduler reads it.
pub fn parse_cron(s: &str) -> Result<croner::Cron, String> {
    if s.split_whitespace().count() != 6 {
        return Err(format!(
            "'{s}' must have six fields: second minute hour day month weekday (e.g. \"0 */5 * * * *\")"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(s)
        .map_err(|e| format!("'{s}' is not a cron expression: {e}"))
}

/// The next time a schedule fires after `now`, in Rome time.
pub fn next_run(
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono_tz::Tz>> {
    let cron = parse_cron(s).ok()?;
    cron.find_next_occurrence(&now.with_timezone(&chrono_tz::Europe::Rome), false)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    #[test]
    fn defaults_env_and_file() {
        let c = load_with(None, &[]).unwrap();
        assert_eq!(c.jobs.ingest.schedule, "0 */5 * * * *");
        assert_eq!(c.jobs.ingest.ready, Ready::DoneMarker);
        let c = load_with(
            None,
            &env(&[
                ("MIRATO_JOBS_INGEST_SCHEDULE", "* * * * * *"),
                ("MIRATO_JOBS_INGEST_RETRIES", "5"),
                ("MIRATO_JOBS_EXPORT_KPIS", "hires, registered_stock"),
            ]),
        )
        .unwrap();
        assert_eq!(c.jobs.ingest.schedule, "* * * * * *");
        assert_eq!(c.jobs.ingest.retry.retries, 5);
        assert_eq!(c.jobs.export.kpis, ["hires", "registered_stock"]);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mirato.toml");
        std::fs::write(&f, "[jobs.compact]\nmin_files = 8\n").unwrap();
        assert_eq!(load_with(Some(&f), &[]).unwrap().jobs.compact.min_files, 8);
    }

    #[test]
    fn mistakes_are_named() {
        let e = load_with(None, &env(&[("MIRATO_JOBS_INGEST_RETRIES", "many")])).unwrap_err();
        assert!(e.to_string().contains("MIRATO_JOBS_INGEST_RETRIES"), "{e}");
        let e = load_with(
            None,
            &env(&[("MIRATO_JOBS_COMPACT_SCHEDULE", "*/5 * * * *")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("six fields"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("mirato.toml");
        std::fs::write(&f, "[jobs.ingest]\nshedule = \"x\"\n").unwrap();
        let e = load_with(Some(&f), &[]).unwrap_err();
        assert!(
            e.to_string().contains("unknown key 'jobs.ingest.shedule'"),
            "{e}"
        );
        let e = load_with(None, &env(&[("MIRATO_JOBS_EXPORT_KPIS", "nope")])).unwrap_err();
        assert!(e.to_string().contains("unknown KPI 'nope'"), "{e}");
    }

    #[test]
    fn memory_limit_is_a_size() {
        let c = load_with(None, &[]).unwrap();
        assert_eq!(c.memory_limit().unwrap(), 768 << 20);
        let dir = tempfile::tempdir().unwrap();
        let s = c.engine_settings(dir.path());
        assert_eq!(s.spill_dir, dir.path().join("spill"));
        let c = load_with(None, &env(&[("MIRATO_ENGINE_MEMORY_LIMIT", "512 MiB")])).unwrap();
        assert_eq!(c.memory_limit().unwrap(), 512 << 20);
        let c = load_with(None, &env(&[("MIRATO_ENGINE_MEMORY_LIMIT", "0")])).unwrap();
        assert_eq!(c.memory_limit().unwrap(), 0);
        let e = load_with(None, &env(&[("MIRATO_ENGINE_MEMORY_LIMIT", "lots")])).unwrap_err();
        assert!(e.to_string().contains("engine.memory_limit 'lots'"), "{e}");
        let e = load_with(None, &env(&[("MIRATO_ENGINE_MEMORY_LIMIT", "1 MiB")])).unwrap_err();
        assert!(e.to_string().contains("below the minimum of 64"), "{e}");
    }

    #[test]
    fn next_run_is_in_rome_time() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-07-01T00:10:00Z")
            .unwrap()
            .to_utc();
        // 02:30 Rome in summer is 00:30 UTC.
        let n = next_run("0 30 2 * * *", now).unwrap();
        assert_eq!(n.to_utc().to_rfc3339(), "2026-07-01T00:30:00+00:00");
    }
}
