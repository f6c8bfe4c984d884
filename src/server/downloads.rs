//! Downloads (the ANPAL workbook, cohort files): the file served, the instant a download
//! computes at, and its turn.
//!
//! A workbook is some hundred KPI queries. Under new data every minute, a workbook asked
//! without `as_of` would be of newer data at each ask, hence a new computation at each ask,
//! and such computations would pile up faster than they end. So a download asked without
//! `as_of` joins the same request's computation already running, at that computation's
//! instant (which the file states). And only `server.max_reports` workbooks compute at once,
//! leaving the engine's other turns to the pages and to cohort files (one query each, which
//! would otherwise wait minutes behind a workbook).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A file served as a download: its name and bytes, and the header that says how it was
/// protected, if any.
pub struct Download {
    pub name: String,
    pub content_type: &'static str,
    /// Shared, not copied, by every response that serves it.
    pub bytes: axum::body::Bytes,
    pub anonymity: Option<String>,
}

impl Download {
    /// The response: the file as an attachment, never stored by the browser's cache.
    pub fn response(&self) -> Response {
        let mut headers = HeaderMap::new();
        let pairs = [
            (header::CONTENT_TYPE, Some(self.content_type.to_owned())),
            (
                header::CONTENT_DISPOSITION,
                Some(format!("attachment; filename=\"{}\"", self.name)),
            ),
            (header::CACHE_CONTROL, Some("no-store".to_owned())),
            (
                header::HeaderName::from_static("x-mirato-anonymity"),
                self.anonymity.clone(),
            ),
        ];
        for (name, v) in pairs {
            if let Some(v) = v.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        }
        (headers, self.bytes.clone()).into_response()
    }
}

/// Half the engine's turns (at least one): the other half stays for the pages and the API.
/// For workbooks (see [`Downloads::turn`]).
pub fn default_at_once(engine_turns: usize) -> usize {
    (engine_turns / 2).max(1)
}

/// The downloads computing now, by request without its instant, and the turns they take.
pub struct Downloads {
    /// Request (without `as_of`) → the id of the computation that registered it, its instant.
    running: Mutex<HashMap<String, (u64, String)>>,
    next_id: AtomicU64,
    turns: Mutex<Arc<Semaphore>>,
}

/// Marks a request's computation as running until dropped: held by the computation itself,
/// so that it ends with it (finished, failed, or dropped when nobody waits for it).
pub struct Running {
    downloads: Arc<Downloads>,
    request: String,
    id: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = lock(&self.downloads.running);
        if running
            .get(&self.request)
            .is_some_and(|(id, _)| *id == self.id)
        {
            running.remove(&self.request);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Downloads {
    pub fn new(at_once: usize) -> Arc<Downloads> {
        Arc::new(Downloads {
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            turns: Mutex::new(Arc::new(Semaphore::new(at_once.max(1)))),
        })
    }

    /// How many workbooks compute at once (the next wait their turn, first come first served).
    pub fn set_at_once(&self, at_once: usize) {
        *lock(&self.turns) = Arc::new(Semaphore::new(at_once.max(1)));
    }

    /// The instant `request` (its parameters, caller and scope, without `as_of`) computes at:
    /// `asked` if the caller named one; else that of the same request's computation running
    /// now; else `shown()`, and then the returned [`Running`] marks it as running (give it to
    /// the computation).
    pub fn instant<E>(
        self: &Arc<Self>,
        request: &str,
        asked: Option<String>,
        shown: impl FnOnce() -> Result<String, E>,
    ) -> Result<(String, Option<Running>), E> {
        if let Some(a) = asked {
            return Ok((a, None));
        }
        let mut running = lock(&self.running);
        if let Some((_, at)) = running.get(request) {
            return Ok((at.clone(), None));
        }
        let at = shown()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        running.insert(request.to_owned(), (id, at.clone()));
        let mark = Running {
            downloads: Arc::clone(self),
            request: request.to_owned(),
            id,
        };
        Ok((at, Some(mark)))
    }

    /// Waits for a workbook's turn to compute; the turn ends when the permit is dropped.
    pub async fn turn(&self) -> OwnedSemaphorePermit {
        let turns = Arc::clone(&lock(&self.turns));
        turns
            .acquire_owned()
            .await
            .expect("the downloads' semaphore is never closed")
    }

    /// Downloads computing or waiting for a turn now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(at: &str) -> impl FnOnce() -> Result<String, ()> + '_ {
        move || Ok(at.to_owned())
    }

    #[test]
    fn a_request_without_an_instant_joins_the_running_one() {
        let d = Downloads::new(1);
        let (at, first) = d.instant("anpal|2025", None, shown("T1")).unwrap();
        assert_eq!(at, "T1");
        assert!(first.is_some());
        // Newer data shown meanwhile: the same request joins the running computation's instant.
        let (at, joined) = d.instant("anpal|2025", None, shown("T2")).unwrap();
        assert_eq!((at.as_str(), joined.is_none()), ("T1", true));
        // Another request, or one that names its instant, is its own.
        let (at, other) = d.instant("anpal|2024", None, shown("T2")).unwrap();
        assert_eq!((at.as_str(), other.is_some()), ("T2", true));
        let (at, named) = d
            .instant("anpal|2025", Some("T0".into()), shown("T2"))
            .unwrap();
        assert_eq!((at.as_str(), named.is_none()), ("T0", true));
        assert_eq!(d.running(), 2);
        // Once the computation ends, the next ask is of the data shown then.
        drop(first);
        let (at, again) = d.instant("anpal|2025", None, shown("T3")).unwrap();
        assert_eq!((at.as_str(), again.is_some()), ("T3", true));
        drop((other, again));
        assert_eq!(d.running(), 0);
    }

    #[test]
    fn a_failed_shown_instant_marks_nothing() {
        let d = Downloads::new(1);
        assert!(
            d.instant("r", None, || Err::<String, _>("no data"))
                .is_err()
        );
        assert_eq!(d.running(), 0);
    }

    #[tokio::test]
    async fn downloads_take_turns() {
        let d = Downloads::new(1);
        let first = d.turn().await;
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), d.turn()).await;
        assert!(
            second.is_err(),
            "a second download computed beside the first"
        );
        drop(first);
        let _second = tokio::time::timeout(std::time::Duration::from_millis(50), d.turn())
            .await
            .expect("the turn passes on when the first ends");
    }
}
