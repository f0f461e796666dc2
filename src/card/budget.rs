//! Admission to costly work a stranger can ask for (decoding an upload, rendering a QR code):
//! a total of units in flight (bytes of memory, or simply jobs), a number of jobs at once, and a
//! short wait for room. A request that finds no room within the wait, or finds too many already
//! waiting, is refused; the caller answers 503 with `Retry-After`. Nothing queues for longer.
//!
//! Waiters are served in arrival order (tokio's semaphore is fair), so a large job is not starved
//! by a stream of small ones. A job costing more than the whole budget is admitted alone, when
//! everything else has finished, instead of never.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A bounded amount of some work in flight.
#[derive(Debug)]
pub struct WorkBudget {
    units: Arc<Semaphore>,
    total_units: u32,
    jobs: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
}

/// Room taken in a [`WorkBudget`], given back when dropped. `Send`: move it into the blocking
/// task that does the work, so it is held exactly as long as the work runs.
#[derive(Debug)]
pub struct Admission {
    _units: OwnedSemaphorePermit,
    _job: OwnedSemaphorePermit,
}

/// No room: try again after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// Decrements the waiter count however the wait ends (admitted, timed out, cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkBudget {
    /// `total_units` in flight at most, `max_jobs` at once; a request waits at most `wait` for
    /// room, and at most `max_waiting` requests wait at the same time.
    ///
    /// # Panics
    ///
    /// If `total_units` or `max_jobs` is 0 (a configuration error, caught at startup).
    pub fn new(total_units: u32, max_jobs: usize, max_waiting: usize, wait: Duration) -> Self {
        assert!(total_units >= 1, "a work budget needs at least one unit");
        assert!(
            max_jobs >= 1,
            "a work budget needs room for at least one job"
        );
        Self {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            jobs: Arc::new(Semaphore::new(max_jobs)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
        }
    }

    /// Takes room for a job of `cost` units, waiting a little for it.
    pub async fn admit(&self, cost: u64) -> Result<Admission, Busy> {
        if let Some(admission) = self.try_admit(cost) {
            return Ok(admission);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(self.busy());
        }
        let _waiting = Waiting(&self.waiting);
        let units = self.clamp(cost);
        let acquire = async {
            let units = self.units.clone().acquire_many_owned(units).await.ok()?;
            let job = self.jobs.clone().acquire_owned().await.ok()?;
            Some(Admission {
                _units: units,
                _job: job,
            })
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Some(admission)) => Ok(admission),
            _ => Err(self.busy()),
        }
    }

    /// Takes room for a job of `cost` units if there is some right now.
    pub fn try_admit(&self, cost: u64) -> Option<Admission> {
        // Behind waiters, a newcomer waits its turn (see `admit`), however small it is.
        if self.waiting.load(Ordering::Acquire) > 0 {
            return None;
        }
        let units = self
            .units
            .clone()
            .try_acquire_many_owned(self.clamp(cost))
            .ok()?;
        let job = self.jobs.clone().try_acquire_owned().ok()?;
        Some(Admission {
            _units: units,
            _job: job,
        })
    }

    /// Units free right now.
    pub fn available_units(&self) -> u32 {
        u32::try_from(self.units.available_permits()).unwrap_or(u32::MAX)
    }

    pub fn total_units(&self) -> u32 {
        self.total_units
    }

    /// What a refusal advises: the wait we would have granted, and at least a second.
    fn busy(&self) -> Busy {
        Busy {
            retry_after: self.wait.max(Duration::from_secs(1)),
        }
    }

    /// At least one unit (a free job is still a job), at most all of them.
    fn clamp(&self, cost: u64) -> u32 {
        u32::try_from(cost)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(units: u32, jobs: usize) -> WorkBudget {
        WorkBudget::new(units, jobs, 4, Duration::from_millis(50))
    }

    #[tokio::test]
    async fn admits_up_to_the_units_then_refuses_with_a_retry_after() {
        let budget = budget(100, 10);
        let a = budget.admit(60).await.unwrap();
        let b = budget.admit(40).await.unwrap();
        assert_eq!(budget.available_units(), 0);
        let refused = budget.admit(1).await.unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        drop(a);
        assert_eq!(budget.available_units(), 60);
        let c = budget.admit(60).await.unwrap();
        assert!(budget.try_admit(1).is_none());
        drop((b, c));
        assert_eq!(budget.available_units(), 100, "everything given back");
    }

    #[tokio::test]
    async fn bounds_the_number_of_jobs_whatever_their_cost() {
        let budget = budget(1_000, 2);
        let _a = budget.admit(1).await.unwrap();
        let _b = budget.admit(1).await.unwrap();
        assert!(budget.admit(1).await.is_err());
        assert_eq!(budget.available_units(), 998, "a refused job holds nothing");
    }

    #[tokio::test]
    async fn a_job_larger_than_the_budget_runs_alone() {
        let budget = budget(100, 10);
        let small = budget.admit(10).await.unwrap();
        assert!(budget.admit(u64::MAX).await.is_err(), "not beside another");
        drop(small);
        let huge = budget.admit(u64::MAX).await.unwrap();
        assert!(budget.try_admit(1).is_none());
        drop(huge);
        assert!(budget.try_admit(100).is_some());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_room_given_back_within_the_wait() {
        let budget = Arc::new(WorkBudget::new(10, 10, 4, Duration::from_secs(60)));
        let held = budget.admit(10).await.unwrap();
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.admit(5).await.map(drop) }
        });
        // Wait until it is queued, then give the room back.
        while budget.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(budget.try_admit(1).is_none(), "no jumping the queue");
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(budget.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn too_many_waiters_are_refused_at_once() {
        let budget = Arc::new(WorkBudget::new(1, 1, 2, Duration::from_secs(60)));
        let _held = budget.admit(1).await.unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let budget = budget.clone();
                tokio::spawn(async move { budget.admit(1).await.map(drop) })
            })
            .collect();
        while budget.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        // A third would wait a minute; it is refused without waiting instead.
        assert!(budget.admit(1).await.is_err());
        for waiter in waiters {
            waiter.abort();
        }
    }
}
