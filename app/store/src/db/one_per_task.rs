//! The rule that keeps the pool from deadlocking: a task never asks for a second
//! control-plane connection while it holds one. (Enough tasks each holding one and
//! waiting for another would wait on each other forever.) Store functions that
//! compose take `&mut Conn` instead of acquiring their own.
//!
//! Debug builds (and so every test) enforce the rule: acquiring a second connection
//! in the same tokio task panics, naming both call sites. Where one task drives
//! several independent pieces of work at once (apalis polls its jobs side by side),
//! each piece runs in its own [`scope`] and is tracked apart. Release builds skip
//! the bookkeeping; the pool's acquire timeout is their safety net.

#[cfg(debug_assertions)]
mod checked {
    use std::collections::HashMap;
    use std::future::Future;
    use std::panic::Location;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// Who holds a connection: a [`scope`] if the work runs in one, else its task.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Holder {
        Scope(u64),
        Task(tokio::task::Id),
    }

    tokio::task_local! {
        static SCOPE: u64;
    }

    /// Runs `work` as its own holder of (at most one) connection.
    pub async fn scope<F: Future>(work: F) -> F::Output {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SCOPE
            .scope(NEXT.fetch_add(1, Ordering::Relaxed), work)
            .await
    }

    fn current() -> Option<Holder> {
        SCOPE
            .try_with(|scope| Holder::Scope(*scope))
            .ok()
            .or_else(|| tokio::task::try_id().map(Holder::Task))
    }

    fn holders() -> &'static Mutex<HashMap<Holder, &'static Location<'static>>> {
        static HOLDERS: OnceLock<Mutex<HashMap<Holder, &'static Location<'static>>>> =
            OnceLock::new();
        HOLDERS.get_or_init(Mutex::default)
    }

    /// Marks the current task as holding a connection until dropped.
    #[derive(Debug)]
    pub struct Held(Option<Holder>);

    impl Held {
        #[track_caller]
        pub fn claim() -> Self {
            let Some(task) = current() else {
                // Outside a task (`block_on` of a CLI command): nothing runs beside it.
                return Self(None);
            };
            let here = Location::caller();
            let mut holders = holders().lock().unwrap_or_else(|p| p.into_inner());
            if let Some(first) = holders.get(&task) {
                let first = *first;
                drop(holders);
                panic!(
                    "store: a task asked for a second connection at {here} while holding one \
                     taken at {first}; pass the connection down instead (see db/one_per_task.rs)"
                );
            }
            holders.insert(task, here);
            Self(Some(task))
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            if let Some(task) = self.0 {
                holders()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&task);
            }
        }
    }
}

#[cfg(not(debug_assertions))]
mod checked {
    pub async fn scope<F: std::future::Future>(work: F) -> F::Output {
        work.await
    }

    #[derive(Debug)]
    pub struct Held;

    impl Held {
        pub fn claim() -> Self {
            Self
        }
    }
}

pub use checked::{Held, scope};

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::Held;

    #[tokio::test]
    async fn one_connection_per_task_at_a_time() {
        tokio::spawn(async {
            let first = Held::claim();
            drop(first);
            let _again = Held::claim();
            // Another task may hold one at the same time.
            tokio::spawn(async { drop(Held::claim()) }).await.unwrap();
        })
        .await
        .expect("sequential claims and claims in other tasks are fine");
    }

    #[tokio::test]
    async fn a_second_connection_in_one_task_panics() {
        let outcome = tokio::spawn(async {
            let _first = Held::claim();
            let _second = Held::claim();
        })
        .await;
        let panic = outcome
            .expect_err("the second claim must panic")
            .into_panic();
        let message = panic
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(message.contains("second connection"), "{message}");
    }

    #[tokio::test]
    async fn work_in_separate_scopes_of_one_task_is_tracked_apart() {
        tokio::spawn(async {
            let (a, b) = tokio::join!(
                super::scope(async {
                    let held = Held::claim();
                    tokio::task::yield_now().await;
                    drop(held);
                }),
                super::scope(async {
                    let held = Held::claim();
                    tokio::task::yield_now().await;
                    drop(held);
                }),
            );
            (a, b)
        })
        .await
        .expect("two scopes may each hold one");
    }
}
