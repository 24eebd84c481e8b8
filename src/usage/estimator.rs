//! The estimator: a thread of its own that counts the tokens of replies
//! whose upstream reported none, then hands the records on to the writer.
//! The tokenizer is slow (a 4 MiB prompt takes seconds), so it never runs
//! on a worker, nor on the writer, whose commits every user's usage and
//! limits wait for. Each record's work is bounded (`ESTIMATE_TEXT`); when
//! too many wait, the rest are guessed from their length instead.

use super::UsageRecord;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Records that may wait for the tokenizer before new ones are guessed.
const MAX_WAITING: usize = 1000;

pub enum Msg {
    Record(Box<UsageRecord>),
    Stop,
}

/// Where records with estimation work go; cheap to clone.
#[derive(Clone)]
pub struct EstimateSink {
    tx: mpsc::Sender<Msg>,
    waiting: Arc<AtomicUsize>,
}

impl EstimateSink {
    /// Sends `r` to be estimated, or guesses at once when the estimator
    /// is behind (and hands it to `write`).
    pub fn send(&self, mut r: Box<UsageRecord>, write: impl FnOnce(Box<UsageRecord>)) {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            r.guess_tokens();
            write(r);
            return;
        }
        if let Err(mpsc::SendError(Msg::Record(r))) = self.tx.send(Msg::Record(r)) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            write(r);
        }
    }
}

pub struct Estimator {
    sink: EstimateSink,
    handle: Option<JoinHandle<()>>,
}

impl Estimator {
    /// Starts the thread; each estimated record goes on to `write`.
    pub fn start(write: impl Fn(Box<UsageRecord>) + Send + 'static) -> Estimator {
        let (tx, rx) = mpsc::channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let count = waiting.clone();
        let handle = std::thread::Builder::new()
            .name("chatgate-estimate".into())
            .spawn(move || {
                while let Ok(Msg::Record(mut r)) = rx.recv() {
                    r.estimate_tokens();
                    count.fetch_sub(1, Ordering::AcqRel);
                    write(r);
                }
            })
            .expect("spawn estimator thread");
        Estimator {
            sink: EstimateSink { tx, waiting },
            handle: Some(handle),
        }
    }

    pub fn sink(&self) -> EstimateSink {
        self.sink.clone()
    }

    /// Estimates everything sent so far and hands it on; then ends.
    pub fn stop(&mut self) {
        let _ = self.sink.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Estimator {
    fn drop(&mut self) {
        self.stop();
    }
}
