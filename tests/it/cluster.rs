//! The KPI catalogue on a Ballista cluster of real processes (`mirato cluster scheduler` and
//! two `mirato cluster executor`s): identical to the local engine at two `as_of` instants, with
//! a breakdown and with a territorial filter; an executor killed while the catalogue runs never
//! gives a wrong figure (its tasks run again elsewhere, or the query fails and says so).

use crate::common;
use common::*;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mirato::query::{Engine, EngineSettings};

/// A scheduler and executors, each a process, stopped on drop.
struct Cluster {
    scheduler: Child,
    executors: Vec<Child>,
    url: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.executors.iter_mut().chain([&mut self.scheduler]) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "port {port} opens"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    /// A scheduler that takes an executor as lost after 5 s of silence, and `executors`
    /// executors of one task slot each, heartbeating every second.
    fn start(env: &Env, executors: usize) -> Cluster {
        let port = free_port();
        let scheduler = env
            .cli()
            .args(["cluster", "scheduler", "--port", &port.to_string()])
            .args(["--executor-timeout", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the scheduler");
        wait_for_port(port);
        let mut cluster = Cluster {
            scheduler,
            executors: Vec::new(),
            url: format!("df://127.0.0.1:{port}"),
        };
        for i in 0..executors {
            let (flight, grpc) = (free_port(), free_port());
            let child = env
                .cli()
                .args(["cluster", "executor", "--port", &flight.to_string()])
                .args(["--grpc-port", &grpc.to_string()])
                .args(["--scheduler", &format!("127.0.0.1:{port}")])
                .args(["--vcores", "1", "--heartbeat", "1", "--work-dir"])
                .arg(env.dir.path().join(format!("executor-{i}")))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start an executor");
            cluster.executors.push(child);
            wait_for_port(flight);
        }
        cluster
    }

    fn engine(&self, data: &Path) -> Engine {
        let settings = EngineSettings {
            ballista: Some(self.url.clone()),
            ..EngineSettings::over(data)
        };
        Engine::open_with(data, &settings).unwrap()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every KPI's rows (or its error) with `params`.
fn catalogue(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    params: &[(&str, &str)],
) -> Vec<String> {
    mirato::query::catalog()
        .iter()
        .map(|d| {
            let mut p = vec![("from", "2024-01-01"), ("to", "2025-12-31")];
            p.extend_from_slice(params);
            match rt.block_on(engine.run_raw(d.id, &raw_params(&p))) {
                Ok(r) => format!("{}: {}", d.id, serde_json::to_string(&r.rows).unwrap()),
                Err(e) => format!("{}: error {e}", d.id),
            }
        })
        .collect()
}

/// A store of two batches, and an instant between them.
fn two_batches() -> (Env, String) {
    let env = Env::new();
    let out = env.dir.path().join("gen");
    stdout_of(
        env.cli()
            .args(["generate", "--persons", "150", "--seed", "5"])
            .args(["--start", "2024-01-01", "--end", "2025-12-31", "--out"])
            .arg(&out),
    );
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let half = files.split_off(files.len() / 2);
    env.ingest(&files);
    std::thread::sleep(Duration::from_millis(20));
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    std::thread::sleep(Duration::from_millis(20));
    env.ingest(&half);
    (env, between)
}

#[test]
fn the_catalogue_on_a_cluster_equals_the_local_engine() {
    let (env, between) = two_batches();
    let cluster = Cluster::start(&env, 2);
    let rt = rt();
    let local = Engine::open(&env.data).unwrap();
    let remote = cluster.engine(&env.data);
    for params in [
        vec![("as_of", between.as_str())],
        vec![("as_of", "2030-01-01T00:00:00Z"), ("by", "region")],
        vec![("region", "Lombardia"), ("by", "gender")],
    ] {
        let want = catalogue(&rt, &local, &params);
        // The vacancies' KPIs take no personal breakdown: the only errors, on both sides.
        assert!(
            want.iter()
                .all(|r| !r.contains(": error ") || r.contains("cannot be broken down")),
            "every KPI answers locally: {want:?}"
        );
        let got = catalogue(&rt, &remote, &params);
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(g, w, "with {params:?}");
        }
    }
    // Every figure came from the cluster, its job confirmed by the scheduler (stages run
    // once, tasks successful), none computed locally instead.
    assert_eq!(remote.cluster_fallbacks(), 0);
}

#[test]
fn an_executor_killed_mid_catalogue_never_gives_a_wrong_figure() {
    let (env, _) = two_batches();
    let mut cluster = Cluster::start(&env, 2);
    let rt = rt();
    let local = Engine::open(&env.data).unwrap();
    let want = catalogue(&rt, &local, &[("by", "province")]);
    let remote = cluster.engine(&env.data);
    let mut victim = cluster.executors.remove(0);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = victim.kill();
        let _ = victim.wait();
    });
    let started = Instant::now();
    let got = catalogue(&rt, &remote, &[("by", "province")]);
    assert!(
        started.elapsed() > Duration::from_millis(1500),
        "the executor died while the catalogue ran"
    );
    killer.join().unwrap();
    let mut failed = 0;
    for (w, g) in want.iter().zip(&got) {
        if g.contains(": error ") {
            failed += 1;
            assert!(
                g.contains("failed") || g.contains("executor"),
                "a clear error: {g}"
            );
        } else {
            assert_eq!(g, w, "a figure from the cluster is the right one");
        }
    }
    assert!(
        failed < want.len(),
        "the surviving executor answers: {got:?}"
    );
    eprintln!(
        "CLUSTER-KILL: {failed} KPIs failed with a clear error, {} computed locally after the scheduler reported re-run stages or tasks",
        remote.cluster_fallbacks()
    );
    // Once the scheduler has written the lost executor off, every KPI answers again.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(catalogue(&rt, &remote, &[("by", "province")]), want);
}
