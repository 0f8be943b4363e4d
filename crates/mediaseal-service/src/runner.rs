//! The process's background jobs: started explicitly by whoever owns the process (the `serve`
//! command, a test), never as a side effect of building a router, and stopped together.
//!
//! Each job gets a [`CancellationToken`] and must return soon after it fires; [`Runner::shutdown`]
//! cancels every job, waits a grace period, then aborts what is still running. Dropping a runner
//! cancels its jobs too.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A set of named background jobs sharing one cancellation.
#[derive(Debug, Default)]
pub struct Runner {
    cancel: CancellationToken,
    jobs: JoinSet<&'static str>,
}

impl Runner {
    /// No jobs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token every job watches.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Starts `job`, which runs until it returns or the token is cancelled.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, job: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fut = job(self.cancel.clone());
        self.jobs.spawn(async move {
            fut.await;
            name
        });
        tracing::debug!(job = name, "background job started");
    }

    /// Starts a job that runs `tick` every `period` (the first run at once) until cancelled.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, move |cancel| async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tick() => {}
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(period) => {}
                }
            }
        });
    }

    /// How many jobs are still running.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// True when no job is running.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Cancels every job and waits up to `grace` for them to return; the rest are aborted.
    pub async fn shutdown(mut self, grace: Duration) {
        self.cancel.cancel();
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = self.jobs.join_next().await {
                match done {
                    Ok(name) => tracing::debug!(job = name, "background job stopped"),
                    Err(e) => tracing::warn!(error = %e, "background job ended abnormally"),
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                jobs = self.jobs.len(),
                "background jobs did not stop in time; aborted"
            );
            self.jobs.abort_all();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn jobs_run_and_stop_on_shutdown() {
        let mut runner = Runner::new();
        let ticks = Arc::new(AtomicUsize::new(0));
        let t = ticks.clone();
        runner.every("tick", Duration::from_millis(5), move || {
            let t = t.clone();
            async move {
                t.fetch_add(1, Ordering::Relaxed);
            }
        });
        runner.spawn("waiter", |cancel| async move { cancel.cancelled().await });
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(ticks.load(Ordering::Relaxed) >= 2);
        assert_eq!(runner.len(), 2);
        runner.shutdown(Duration::from_secs(5)).await;
        let after = ticks.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            ticks.load(Ordering::Relaxed),
            after,
            "a job ran after shutdown"
        );
    }

    #[tokio::test]
    async fn stubborn_jobs_are_aborted() {
        let mut runner = Runner::new();
        runner.spawn("stubborn", |_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let started = std::time::Instant::now();
        runner.shutdown(Duration::from_millis(50)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
