//! argon2id password hashing on a small, fixed pool of dedicated threads.
//!
//! One check costs ~19 MiB and tens of milliseconds of a core. Run without a bound (as on the
//! blocking pool), a login storm takes all memory and every core. Here a fixed number of threads
//! hash, each reusing one argon2 memory buffer of its own, at a lower priority than the request
//! threads; a short queue sits in front; a caller who finds it full, or whose check waited longer
//! than `max_wait`, is told the service is busy (503 + `Retry-After`) instead of growing it.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng, rand_core::RngCore},
};
use poem::http::StatusCode;
use tokio::sync::{Semaphore, oneshot};

use super::policy::{self, PasswordContext};
use crate::error::ApiError;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 256;

/// What a caller refused for want of a hashing thread is asked to wait, in seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The hashing threads' nice value: the request threads (nice 0) win the CPU from them, so card
/// pages and lists keep their latency while logins queue.
const HASHING_NICENESS: libc::c_int = 10;
/// The hashing threads' time slice, the shortest the kernel takes (see `lower_priority`).
const HASHING_SLICE: Duration = Duration::from_micros(100);

/// Every new hash: argon2id v1.3 with OWASP's minimum, m = 19 MiB, t = 2, p = 1.
const PARAMS: Params = Params::DEFAULT;

/// The pool was full, or the check waited too long for a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl From<Busy> for ApiError {
    fn from(_: Busy) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many password checks at once; try again shortly",
        )
        .retry_after(std::time::Duration::from_secs(BUSY_RETRY_AFTER_SECS))
    }
}

type Work = Box<dyn FnOnce(&mut Workspace) + Send>;

struct Job {
    queued_at: Instant,
    work: Work,
}

/// The hashing threads and their queue. Dropping it lets the threads finish and exit.
pub struct HashingPool {
    jobs: mpsc::Sender<Job>,
    /// One permit per running or queued check: `threads + queue` in all.
    slots: Arc<Semaphore>,
}

impl HashingPool {
    pub fn new(threads: usize, queue: usize, max_wait: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(threads >= 1, "password hashing needs at least one thread");
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{n}"))
                .spawn(move || hashing_thread(&receiver, max_wait))?;
        }
        Ok(Self {
            jobs,
            slots: Arc::new(Semaphore::new(threads + queue)),
        })
    }

    /// A place in the pool, taken before any other work of a request that will need it: a
    /// caller refused for want of one costs nothing more (no database round trip).
    pub fn reserve(&self) -> Result<Reservation, Busy> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map(Reservation)
            .map_err(|_| Busy)
    }

    /// Runs `work` on a hashing thread, or refuses at once when every thread and queue place is
    /// taken.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        self.run_reserved(self.reserve()?, work).await
    }

    async fn run_reserved<T: Send + 'static>(
        &self,
        Reservation(permit): Reservation,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            queued_at: Instant::now(),
            work: Box::new(move |workspace| {
                // The caller gave up (its client went away): no work for nobody.
                if answer.is_closed() {
                    return;
                }
                let result = work(workspace);
                // The place is free before the caller hears back, so it may send the next one.
                drop(permit);
                let _ = answer.send(result);
            }),
        };
        self.jobs.send(job).map_err(|_| Busy)?;
        // Dropped unanswered: it waited longer than allowed (or the thread panicked).
        answered.await.map_err(|_| Busy)
    }

    /// A new hash of a password that passed the policy; `field` names it in the refusal.
    pub async fn hash_new(
        &self,
        field: &'static str,
        password: String,
        context: PasswordContext,
    ) -> Result<String, ApiError> {
        self.run(move |workspace| {
            policy::check(field, &password, &context)?;
            workspace
                .hash(password.as_bytes())
                .map_err(ApiError::internal)
        })
        .await?
    }

    /// Checks `password` against a stored PHC hash. With no stored hash (unknown email), a dummy
    /// hash is checked instead, so an unknown account takes as long to refuse as a wrong password.
    pub async fn verify(
        &self,
        password: String,
        stored_hash: Option<String>,
    ) -> Result<bool, ApiError> {
        self.verify_reserved(self.reserve()?, password, stored_hash)
            .await
    }

    /// [`HashingPool::verify`] in a place reserved earlier.
    pub async fn verify_reserved(
        &self,
        reservation: Reservation,
        password: String,
        stored_hash: Option<String>,
    ) -> Result<bool, ApiError> {
        self.run_reserved(reservation, move |workspace| {
            let known = stored_hash.is_some();
            let hash = stored_hash.as_deref().unwrap_or_else(|| dummy_hash());
            let matches = workspace
                .verify(password.as_bytes(), hash)
                .map_err(|e| ApiError::internal(format!("stored hash unusable: {e}")))?;
            Ok(known && matches)
        })
        .await?
    }
}

/// A running or queued check's place in a [`HashingPool`], held from before the request's
/// database work until its check is done.
pub struct Reservation(tokio::sync::OwnedSemaphorePermit);

fn hashing_thread(jobs: &Mutex<mpsc::Receiver<Job>>, max_wait: Duration) {
    lower_priority();
    let mut workspace = Workspace::new();
    loop {
        // A poisoned lock only means another thread panicked while waiting: the receiver is fine.
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else {
            return; // the pool is gone
        };
        if job.queued_at.elapsed() > max_wait {
            continue; // dropping it answers the caller `Busy`
        }
        // A panic in one check must not take a thread away from the pool.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| (job.work)(&mut workspace)));
    }
}

fn lower_priority() {
    // Nice 10 alone is not enough under EEVDF: a request's thread (or PostgreSQL) that wakes
    // waits for a running hashing thread to use up its time slice (about 1.5 ms on 2 cores), on
    // every hop of the request. A slice of its own as short as the kernel allows lets them in
    // at once, while the hashing threads keep their (smaller) fair share of the CPU: logins are
    // slowed by a busy service, never starved by it. Kernels before 6.12 take the niceness and
    // ignore the slice.
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: HASHING_NICENESS,
        sched_priority: 0,
        sched_runtime: HASHING_SLICE.as_nanos() as u64,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: sched_setattr with pid 0 sets the calling thread's own scheduling attributes from
    // a fully initialised `sched_attr` whose `size` says how much of it to read.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attr, 0) } == 0 {
        return;
    }
    let attr_error = std::io::Error::last_os_error();
    // SAFETY: gettid and setpriority only read and set the calling thread's scheduling niceness.
    let result = unsafe {
        let thread_id = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread_id, HASHING_NICENESS)
    };
    if result != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            %attr_error,
            "could not lower the priority of a password hashing thread"
        );
    }
}

/// One hashing thread's argon2 memory, allocated once and reused for every check.
pub struct Workspace {
    memory: Vec<Block>,
}

impl Workspace {
    fn new() -> Self {
        Self {
            memory: vec![Block::default(); PARAMS.block_count()],
        }
    }

    fn hash(&mut self, password: &[u8]) -> argon2::password_hash::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.as_salt().decode_b64(&mut salt_bytes)?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS).hash_password_into_with_memory(
            password,
            raw_salt,
            &mut out,
            &mut self.memory[..],
        )?;
        Ok(phc(&salt, &out)?.to_string())
    }

    /// Recomputes the hash with the stored parameters and compares in constant time.
    fn verify(&mut self, password: &[u8], stored: &str) -> argon2::password_hash::Result<bool> {
        use argon2::password_hash::Error;
        let parsed = PasswordHash::new(stored)?;
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(Error::PhcStringField);
        };
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut salt_bytes)?;
        let mut out = vec![0u8; expected.len()];
        let needed = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        if needed <= self.memory.len() {
            argon2.hash_password_into_with_memory(
                password,
                raw_salt,
                &mut out,
                &mut self.memory,
            )?;
        } else {
            // Stored with more memory than new hashes use: a one-off buffer, not kept.
            argon2.hash_password_into_with_memory(
                password,
                raw_salt,
                &mut out,
                vec![Block::default(); needed],
            )?;
        }
        Ok(Output::new(&out)? == expected)
    }
}

fn phc<'a>(salt: &'a SaltString, out: &[u8]) -> argon2::password_hash::Result<PasswordHash<'a>> {
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&PARAMS)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(out)?),
    })
}

/// A hash of the current parameters that no password matches (its output is random bytes):
/// checking against it costs exactly what checking a real one does.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        OsRng.fill_bytes(&mut out);
        phc(&salt, &out).map(|h| h.to_string()).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    fn pool(threads: usize, queue: usize) -> HashingPool {
        HashingPool::new(threads, queue, Duration::from_secs(30)).unwrap()
    }

    fn nobody() -> PasswordContext {
        PasswordContext::default()
    }

    #[tokio::test]
    async fn hashing_threads_run_niced_with_the_shortest_slice() {
        let pool = pool(1, 0);
        let (nice, slice) = pool
            .run(|_| {
                // SAFETY: an all-zero `sched_attr` is valid; sched_getattr fills in at most
                // `size` bytes of it for the calling thread.
                let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
                let size = std::mem::size_of::<libc::sched_attr>() as u32;
                let read =
                    unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attr, size, 0) };
                assert_eq!(read, 0, "{}", std::io::Error::last_os_error());
                (attr.sched_nice, attr.sched_runtime)
            })
            .await
            .unwrap();
        assert_eq!(nice, HASHING_NICENESS);
        // Kernels before 6.12 have no slice per thread and report none.
        if slice != 0 {
            assert_eq!(u128::from(slice), HASHING_SLICE.as_nanos());
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_salt() {
        let pool = pool(2, 2);
        let a = pool
            .hash_new("password", "correct horse battery".into(), nobody())
            .await
            .unwrap();
        let b = pool
            .hash_new("password", "correct horse battery".into(), nobody())
            .await
            .unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        let verify = |password: &str, hash: Option<String>| pool.verify(password.into(), hash);
        assert!(
            verify("correct horse battery", Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong horse battery", Some(a)).await.unwrap());
        assert!(!verify("correct horse battery", None).await.unwrap());
    }

    #[tokio::test]
    async fn agrees_with_the_reference_implementation() {
        let pool = pool(1, 0);
        // Ours verifies theirs, including stronger parameters than ours (a larger buffer).
        for params in [Params::DEFAULT, Params::new(32 * 1024, 3, 1, None).unwrap()] {
            let salt = SaltString::generate(&mut OsRng);
            let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"tr0ub4dor&3 horse", &salt)
                .unwrap()
                .to_string();
            let ok = pool.verify("tr0ub4dor&3 horse".into(), Some(theirs.clone()));
            assert!(ok.await.unwrap(), "{theirs}");
            let wrong = pool.verify("tr0ub4dor&4 horse".into(), Some(theirs));
            assert!(!wrong.await.unwrap());
        }
        // Theirs verifies ours.
        let ours = pool
            .hash_new("password", "tr0ub4dor&3 horse".into(), nobody())
            .await
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"tr0ub4dor&3 horse", &parsed)
                .is_ok()
        );
        // A stored hash that is not one answers an error, never a panic.
        let broken = pool.verify("x".into(), Some("not-a-hash".into())).await;
        assert_eq!(
            broken.unwrap_err().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn the_policy_is_applied_before_hashing() {
        let pool = pool(1, 0);
        let err = pool
            .hash_new("new_password", "password".into(), nobody())
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.to_string().contains("new_password"), "{err}");
    }

    /// Work that holds its thread until told to go, reporting when it started.
    fn held(
        started: std::sync::mpsc::Sender<()>,
        go: Arc<(Mutex<bool>, std::sync::Condvar)>,
    ) -> impl FnOnce(&mut Workspace) -> &'static str + Send + 'static {
        move |_| {
            let _ = started.send(());
            let (lock, cvar) = &*go;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cvar.wait(open).unwrap();
            }
            "done"
        }
    }

    #[tokio::test]
    async fn a_reservation_holds_its_place_until_its_check_is_done() {
        let stored = pool(1, 0)
            .hash_new("password", "correct horse battery".into(), nobody())
            .await
            .unwrap();
        let pool = pool(1, 0);
        let reservation = pool.reserve().unwrap();
        // The one place is taken before any hashing started: the next caller is refused.
        assert!(matches!(pool.reserve(), Err(Busy)));
        assert_eq!(
            pool.verify("anything".into(), None)
                .await
                .unwrap_err()
                .code(),
            "busy"
        );
        assert!(
            pool.verify_reserved(reservation, "correct horse battery".into(), Some(stored))
                .await
                .unwrap()
        );
        // Done: the place is free again.
        drop(pool.reserve().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_at_once_and_recovers() {
        let (threads, queue) = (2, 3);
        let pool = Arc::new(pool(threads, queue));
        let go = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (started, starts) = std::sync::mpsc::channel();
        let mut accepted = Vec::new();
        for _ in 0..threads + queue {
            let (pool, work) = (pool.clone(), held(started.clone(), go.clone()));
            accepted.push(tokio::spawn(async move { pool.run(work).await }));
        }
        // Both threads are busy (the queue holds the rest), waited for with a deadline.
        for _ in 0..threads {
            starts.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        // Every place is taken only once the queued ones are admitted too.
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.slots.available_permits() > 0 {
            assert!(Instant::now() < deadline, "the queue never filled");
            tokio::task::yield_now().await;
        }
        // The (threads + queue + 1)-th is refused without waiting, and as a 503 with Retry-After.
        let refused = pool.run(|_| "never").await;
        assert_eq!(refused, Err(Busy));
        let err = ApiError::from(Busy);
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code(), "busy");

        {
            let (lock, cvar) = &*go;
            *lock.lock().unwrap() = true;
            cvar.notify_all();
        }
        for task in accepted {
            assert_eq!(task.await.unwrap(), Ok("done"));
        }
        assert_eq!(pool.run(|_| "again").await, Ok("again"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_check_that_waited_too_long_is_dropped() {
        let max_wait = Duration::from_secs(1);
        let pool = Arc::new(HashingPool::new(1, 4, max_wait).unwrap());
        let go = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (started, starts) = std::sync::mpsc::channel();
        let first = {
            let (pool, work) = (pool.clone(), held(started, go.clone()));
            tokio::spawn(async move { pool.run(work).await })
        };
        starts.recv_timeout(Duration::from_secs(30)).unwrap();
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|_| "late").await })
        };
        while pool.slots.available_permits() > 3 {
            tokio::task::yield_now().await;
        }
        // The behaviour under test is a wait longer than allowed: let that much time pass.
        tokio::time::sleep(max_wait + Duration::from_millis(200)).await;
        {
            let (lock, cvar) = &*go;
            *lock.lock().unwrap() = true;
            cvar.notify_all();
        }
        assert_eq!(first.await.unwrap(), Ok("done"));
        assert_eq!(queued.await.unwrap(), Err(Busy));
        assert_eq!(pool.run(|_| "fresh").await, Ok("fresh"));
    }
}
