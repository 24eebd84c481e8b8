//! A background thread that does one job again and again, and stops at
//! once when asked (or dropped): the key refresher and the pruner.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What a running job has of its thread: whether it was asked to stop.
pub struct Stop(mpsc::Receiver<()>);

impl Stop {
    /// Waits `d`; whether to go on (no stop was asked for meanwhile).
    pub fn pause(&self, d: Duration) -> bool {
        matches!(self.0.recv_timeout(d), Err(mpsc::RecvTimeoutError::Timeout))
    }
}

pub struct Periodic {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Runs `job` on a thread called `name`, every `every` (the first time
    /// at once when `now`), until stopped.
    pub fn start(
        name: &str,
        every: Duration,
        now: bool,
        mut job: impl FnMut(&Stop) + Send + 'static,
    ) -> Periodic {
        let (stop, stopped) = mpsc::channel::<()>();
        let stopped = Stop(stopped);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if now {
                    job(&stopped);
                }
                while stopped.pause(every) {
                    job(&stopped);
                }
            })
            .unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"));
        Periodic {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Asks the job to stop and waits for its thread.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop();
    }
}
