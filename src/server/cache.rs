//! The caches of the server: KPI results by KPI, parameters and data version, and rendered pages
//! by page, filters and data version. Concurrent requests for the same missing entry share one
//! computation (fifty managers opening Monday's page do not start fifty identical queries). A new
//! ingest changes the data version, hence the key, so a stale figure is never served; old
//! entries age out (least recently used first).
//!
//! A computation goes on when its caller stops waiting (a deferred answer), so that the retry
//! finds it; but one that nobody has waited for during [`ABANDON_AFTER`] is dropped, which
//! cancels its queries: under a load the machine cannot keep up with, the work of clients that
//! gave up must not queue ahead of the work of those still asking.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::query::KpiResult;

/// How long a computation goes on with nobody waiting for it. A deferred answer asks the
/// client to come back in 10 s (`Retry-After`, a page's `Refresh`); three times that covers a
/// slow client, and a client gone for longer has given up.
pub const ABANDON_AFTER: Duration = Duration::from_secs(30);

/// One entry: its value once computed, whether a task of its own is computing it now, and who
/// waits for it.
struct Entry<V> {
    value: OnceCell<Arc<V>>,
    detached: AtomicBool,
    /// Callers waiting for the value now.
    waiters: AtomicUsize,
    /// When the last waiter left.
    left_at: Mutex<Instant>,
}

type Slot<V> = Arc<Entry<V>>;

impl<V> Entry<V> {
    /// The value, computed by `compute` unless it is there or being computed (then awaited).
    async fn value_or<F, Fut, E>(&self, compute: F) -> Result<(Arc<V>, Lookup), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let mut computed = false;
        let r = self
            .value
            .get_or_try_init(|| async {
                computed = true;
                compute().await.map(Arc::new)
            })
            .await?;
        let how = if computed { Lookup::Miss } else { Lookup::Hit };
        Ok((Arc::clone(r), how))
    }

    /// Ends once nobody has waited for the value during `grace`.
    async fn abandoned(&self, grace: Duration) {
        loop {
            let idle_for = if self.waiters.load(Ordering::SeqCst) == 0 {
                lock(&self.left_at).elapsed()
            } else {
                Duration::ZERO
            };
            if idle_for >= grace {
                return;
            }
            tokio::time::sleep((grace - idle_for).max(grace / 8)).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts a caller as waiting for an entry until it is dropped (answered, or gone).
struct Waiting<V>(Slot<V>);

impl<V> Waiting<V> {
    fn new(slot: &Slot<V>) -> Waiting<V> {
        slot.waiters.fetch_add(1, Ordering::SeqCst);
        Waiting(Arc::clone(slot))
    }
}

impl<V> Drop for Waiting<V> {
    fn drop(&mut self) {
        // The time first, then the count: whoever sees no waiter sees when the last one left.
        *lock(&self.0.left_at) = Instant::now();
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct ResultCache<V = KpiResult> {
    capacity: usize,
    inner: Mutex<Lru<V>>,
    /// See [`ABANDON_AFTER`].
    grace: Duration,
    /// Computations dropped since start because nobody waited for them.
    abandoned: Arc<AtomicU64>,
}

struct Lru<V> {
    tick: u64,
    map: HashMap<String, (u64, Slot<V>)>,
}

/// Whether a lookup found a finished result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
}

impl<V> ResultCache<V> {
    pub fn new(capacity: usize) -> ResultCache<V> {
        ResultCache::with_grace(capacity, ABANDON_AFTER)
    }

    /// A cache whose computations are dropped after `grace` without a waiter.
    pub fn with_grace(capacity: usize, grace: Duration) -> ResultCache<V> {
        ResultCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Lru {
                tick: 0,
                map: HashMap::new(),
            }),
            grace,
            abandoned: Arc::new(AtomicU64::new(0)),
        }
    }

    fn slot(&self, key: &str) -> Slot<V> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.tick += 1;
        let tick = g.tick;
        if let Some((t, s)) = g.map.get_mut(key) {
            *t = tick;
            return Arc::clone(s);
        }
        if g.map.len() >= self.capacity {
            // Evict the least recently used eighth in one pass rather than one entry per insert.
            let mut ticks: Vec<u64> = g.map.values().map(|(t, _)| *t).collect();
            ticks.sort_unstable();
            let cut = ticks[(ticks.len() / 8).min(ticks.len() - 1)];
            g.map.retain(|_, (t, _)| *t > cut);
        }
        let s: Slot<V> = Arc::new(Entry {
            value: OnceCell::new(),
            detached: AtomicBool::new(false),
            waiters: AtomicUsize::new(0),
            left_at: Mutex::new(Instant::now()),
        });
        g.map.insert(key.to_owned(), (tick, Arc::clone(&s)));
        s
    }

    /// The cached result for `key`, or the result of `compute` (shared by concurrent callers).
    /// A failed computation is not cached.
    ///
    /// The caller that finds the entry idle starts the computation as a task of its own: if the
    /// caller stops waiting (a request past the server's wait, see
    /// [`super::AppState::set_max_wait`]), the computation goes on and its result lands in the
    /// cache for the next try. Callers that come while it runs wait for it in their own task,
    /// and only while they are waiting: one that has gone never starts a computation again
    /// (after a failure, say). A computation that nobody has waited for during the cache's
    /// grace ([`ABANDON_AFTER`]) is dropped, its queries with it, and the next caller starts
    /// afresh. A panic in the computation reaches the caller that started it.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &str,
        compute: F,
    ) -> Result<(Arc<V>, Lookup), E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
        V: Send + Sync + 'static,
        E: Send + 'static,
    {
        let slot = self.slot(key);
        if let Some(r) = slot.value.get() {
            return Ok((Arc::clone(r), Lookup::Hit));
        }
        let _waiting = Waiting::new(&slot);
        if slot.detached.swap(true, Ordering::AcqRel) {
            // Someone's computation runs: wait for it here (or, if it fails, compute for
            // ourselves while we still wait).
            return slot.value_or(compute).await;
        }
        /// Marks the entry idle again however the task ends, a panic included.
        struct Idle<V>(Slot<V>);
        impl<V> Drop for Idle<V> {
            fn drop(&mut self) {
                self.0.detached.store(false, Ordering::Release);
            }
        }
        let (grace, abandoned) = (self.grace, Arc::clone(&self.abandoned));
        let task = super::carry_scope(async move {
            let idle = Idle(slot);
            tokio::select! {
                r = idle.0.value_or(compute) => Some(r),
                () = idle.0.abandoned(grace) => {
                    abandoned.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("a computation nobody waited for was dropped");
                    None
                }
            }
        });
        match tokio::spawn(task).await {
            Ok(Some(r)) => r,
            // This caller waits, so the computation has a waiter and cannot be abandoned.
            Ok(None) => unreachable!("a computation was abandoned while its caller waited"),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only when the runtime itself shuts down.
            Err(e) => panic!("a cached computation was cancelled: {e}"),
        }
    }

    /// Computations dropped since start because nobody waited for them.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .values()
            .filter(|(_, s)| s.value.initialized())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn result(kpi: &str) -> KpiResult {
        KpiResult {
            kpi: kpi.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn concurrent_misses_compute_once() {
        let cache: Arc<ResultCache> = Arc::new(ResultCache::new(8));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_compute("k", move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok::<_, ()>(result("a"))
                    })
                    .await
                    .map(|(r, _)| r.kpi.clone())
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "a");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_capacity_holds() {
        let cache: ResultCache = ResultCache::new(4);
        let e = cache
            .get_or_compute("k", || async { Err::<KpiResult, _>("boom") })
            .await;
        assert!(e.is_err());
        let (_, how) = cache
            .get_or_compute("k", || async { Ok::<_, ()>(result("k")) })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Miss);
        let (_, how) = cache
            .get_or_compute("k", || async { Ok::<_, ()>(result("k")) })
            .await
            .unwrap();
        assert_eq!(how, Lookup::Hit);
        for i in 0..20 {
            let k = format!("k{i}");
            cache
                .get_or_compute(&k, || async { Ok::<_, ()>(result("x")) })
                .await
                .unwrap();
        }
        assert!(cache.len() <= 4);
    }

    /// A request past the server's wait drops its future: the computation it started goes
    /// on, and the next caller finds the result without computing again.
    #[tokio::test]
    async fn a_caller_that_stops_waiting_leaves_the_computation_to_finish() {
        let cache: Arc<ResultCache> = Arc::new(ResultCache::new(8));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let gone = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            cache.get_or_compute("k", move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                Ok::<_, ()>(result("a"))
            }),
        )
        .await;
        assert!(gone.is_err(), "the caller was meant to give up first");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (r, how) = cache
            .get_or_compute("k", || async { Err::<KpiResult, ()>(()) })
            .await
            .expect("the abandoned computation's result");
        assert_eq!((r.kpi.as_str(), how), ("a", Lookup::Hit));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    /// Only the computation's own task outlives its caller: a waiter that has gone does not
    /// compute again when the computation it waited for fails.
    #[tokio::test]
    async fn a_waiter_that_has_gone_never_computes() {
        let cache: Arc<ResultCache> = Arc::new(ResultCache::new(8));
        let runs = Arc::new(AtomicUsize::new(0));
        let first = {
            let (cache, runs) = (Arc::clone(&cache), Arc::clone(&runs));
            tokio::spawn(async move {
                cache
                    .get_or_compute("k", move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        Err::<KpiResult, _>("refused")
                    })
                    .await
                    .map(|_| ())
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let counted = Arc::clone(&runs);
        let waiter = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            cache.get_or_compute("k", move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Ok::<_, &str>(result("b"))
            }),
        )
        .await;
        assert!(waiter.is_err(), "the waiter was meant to give up first");
        assert_eq!(first.await.unwrap(), Err("refused"));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "a gone waiter computed");
        assert!(cache.is_empty());
    }

    /// A computation whose callers have all gone for longer than the grace is dropped (its
    /// work with it), and the next caller computes afresh.
    #[tokio::test]
    async fn a_computation_nobody_waits_for_is_dropped() {
        let cache: Arc<ResultCache> =
            Arc::new(ResultCache::with_grace(8, Duration::from_millis(50)));
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let compute = |ms: u64| {
            let (started, finished) = (Arc::clone(&started), Arc::clone(&finished));
            move || async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(result("a"))
            }
        };
        let gone = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get_or_compute("k", compute(1_000)),
        )
        .await;
        assert!(gone.is_err(), "the caller was meant to give up first");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(cache.abandoned(), 1);
        assert_eq!(
            finished.load(Ordering::SeqCst),
            0,
            "the dropped work ran on"
        );
        let (_, how) = cache.get_or_compute("k", compute(10)).await.unwrap();
        assert_eq!(how, Lookup::Miss);
        assert_eq!(started.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    /// A caller back within the grace (a deferred answer's retry) keeps the computation, and
    /// waiting for it counts as much as starting it.
    #[tokio::test]
    async fn a_retry_within_the_grace_keeps_the_computation() {
        let cache: Arc<ResultCache> =
            Arc::new(ResultCache::with_grace(8, Duration::from_millis(300)));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let gone = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get_or_compute("k", move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok::<_, ()>(result("a"))
            }),
        )
        .await;
        assert!(gone.is_err(), "the caller was meant to give up first");
        // Back within the grace (at 150 ms of 310), waits past its end, gives up at 500 ms; the
        // computation ends at 610 ms, before the grace from then (800 ms).
        tokio::time::sleep(Duration::from_millis(140)).await;
        let again = tokio::time::timeout(
            Duration::from_millis(350),
            cache.get_or_compute("k", || async { Err::<KpiResult, ()>(()) }),
        )
        .await;
        assert!(again.is_err(), "the retry was meant to give up too");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (r, how) = cache
            .get_or_compute("k", || async { Err::<KpiResult, ()>(()) })
            .await
            .expect("the kept computation's result");
        assert_eq!((r.kpi.as_str(), how), ("a", Lookup::Hit));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.abandoned(), 0);
    }
}
