//! The query engine within a memory limit: what does not fit spills to disk and gives the same
//! answer; what cannot fit even so fails with an error that says what to do, never a crash.

use std::path::Path;

use mirato::query::{Engine, EngineSettings, KpiResult, QueryError, RawParams};

use crate::common::generated_store;

fn raw() -> RawParams {
    RawParams {
        from: Some("2024-01-01".into()),
        to: Some("2025-12-31".into()),
        ..RawParams::default()
    }
}

/// An engine with a pool of `bytes` (0: none) over `data`, with no stored views, so that the
/// shared views are built (their joins and window sorts are the largest operators) within it.
fn engine(data: &Path, bytes: usize) -> Engine {
    let _ = std::fs::remove_dir_all(data.join("views"));
    let settings = EngineSettings {
        memory_limit: bytes,
        ..EngineSettings::over(data)
    };
    Engine::open_with(data, &settings).unwrap()
}

/// Under every limit, from roomy to absurd, a KPI gives the unlimited engine's exact rows or a
/// [`QueryError::Memory`] that names the setting: never another error, never a panic. Some of
/// the runs that answer do so by spilling (the engine counts the spill files its queries and
/// view builds make), and their answer is still the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_limits_spill_or_say_so() {
    // Enough persons that the views' window sorts outgrow the smaller pools and spill.
    let env = generated_store(20000, 21, "2022-01-01", "2025-12-31");
    let kpis = [
        "retention_180",
        "placement_rate_180",
        "registered_stock",
        "measure_completion_rate",
        "time_to_placement",
    ];
    let (mut spilled_same, mut refused) = (0, 0);
    for id in kpis {
        let want: KpiResult = engine(&env.data, 0).run_raw(id, &raw()).await.unwrap();
        for kib in [32768usize, 16384, 8192, 4096, 1024, 256] {
            let small = engine(&env.data, kib << 10);
            match small.run_raw(id, &raw()).await {
                Ok(got) => {
                    assert_eq!(got.rows, want.rows, "{id} within {kib} KiB");
                    if small.spill_files() > 0 {
                        spilled_same += 1;
                    }
                }
                Err(e @ QueryError::Memory { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("engine.memory_limit"), "{text}");
                    assert!(text.contains("MIRATO_ENGINE_MEMORY_LIMIT"), "{text}");
                    refused += 1;
                }
                Err(e) => panic!("{id} within {kib} KiB: not a memory error: {e}"),
            }
        }
    }
    assert!(
        spilled_same > 0,
        "no run spilled: the limits are too roomy to test anything"
    );
    assert!(
        refused > 0,
        "no run was refused: 256 KiB should be too little for a join"
    );
    // Every spill file goes with its query: once the tasks of a refused query have wound down
    // (they end a moment after its error is answered), the spill folders are empty or gone.
    let mut left: Vec<_> = walk(&env.data.join("spill"));
    for _ in 0..200 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        left = walk(&env.data.join("spill"));
    }
    assert!(left.is_empty(), "spill files left behind: {left:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The server answers a query that cannot fit with 503 and words a person can act on, not 500.
#[test]
fn the_server_says_unavailable() {
    let e = QueryError::Memory {
        detail: "Additional allocation failed for HashJoinInput".into(),
    };
    let app = mirato::server::AppError::from(e);
    assert_eq!(app.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(app.message().contains("more memory"), "{}", app.message());
}
