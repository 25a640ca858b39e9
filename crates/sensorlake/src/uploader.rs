//! The upload state machine: takes the oldest spooled file, gets a presigned URL from a
//! [`UrlSource`], PUTs it through any `embedded_svc` [`Connection`], and acts on the
//! classified answer ([`crate::upload::classify`]):
//!
//! | answer | action |
//! |---|---|
//! | 2xx whose ETag is the body's MD5 | the file leaves the spool |
//! | 2xx with another ETag (not an MD5), or 412 to `If-None-Match: *` | read the object back (GET): the file leaves the spool only if it holds these bytes; otherwise it stays and the status says why |
//! | network error, timeout, 5xx, 429, `SlowDown` | retry with capped exponential backoff, full jitter |
//! | expired URL (`AccessDenied` "Request has expired", R2's `ExpiredRequest`, Garage's "Date is too old"), not yet valid, `RequestTimeTooSkewed` | correct the clock offset from the `Date` header, sign again, retry at once; with a presign broker (which signs with its own clock) ask for a fresh URL once, then back off naming the broker's clock |
//! | credential or configuration errors | pause all uploads (with backoff), report the reason; the queue stays |
//! | `BadDigest` | re-read and verify the local file: retry if sound, quarantine if corrupt |
//! | other 4xx about this request (e.g. `EntityTooLarge`) | quarantine with the answer as reason |
//!
//! It never sleeps: [`Uploader::step`] does at most one upload and says what to do next
//! ([`Next`]), so a host thread, an async task or an ESP-IDF task can drive it. The
//! spool is passed behind a [`Mutex`] that is not held during network I/O, so a
//! sampling task can keep spooling meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use embedded_svc::http::client::Connection;

use crate::backoff::Backoff;
use crate::clock::{Clock, shift};
use crate::failpoint;
use crate::presign::{PresignedPut, PutRequest, md5_hex};
use crate::spool::{FileFacts, Spool, SpoolEntry, read_facts, verify_rows};
use crate::storage::Storage;
use crate::upload::{Outcome, ReadBack, put_presigned, read_back};
use crate::url_source::{UrlError, UrlSource};

/// Upload settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// First retry delay ceiling (default 250 ms).
    pub backoff_initial: Duration,
    /// Largest retry delay (default 30 s).
    pub backoff_max: Duration,
    /// Ceiling of the first wait while paused by a credential/configuration error
    /// (default 10 s); each pause waits a random time between half and all of its
    /// ceiling, which doubles per pause up to `pause_max`.
    pub pause_initial: Duration,
    /// Largest wait while paused (default 5 min).
    pub pause_max: Duration,
    /// Re-signings in a row (clock corrections) before falling back to backoff (default 3).
    pub max_resigns: u32,
    /// Decode every file and check its rows against its key before sending (default
    /// true); otherwise only the footer is checked (the rows are still verified after a
    /// `BadDigest`).
    pub verify_rows: bool,
    /// Sign `If-None-Match: *` on every PUT (default true), so nothing stored is ever
    /// overwritten. `false` is for servers without conditional writes (they answer 501):
    /// keys that carry the rows' hash are then written without the condition (a second
    /// write stores the same rows); any other key keeps it.
    pub conditional_writes: bool,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            pause_initial: Duration::from_secs(10),
            pause_max: Duration::from_secs(300),
            max_resigns: 3,
            verify_rows: true,
            conditional_writes: true,
        }
    }
}

/// What the driver should do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Call [`Uploader::step`] again at once.
    Now,
    /// Call it again at (or after) this time; earlier calls return the same.
    WaitUntil(Instant),
    /// The spool is empty: call again when a file was spooled (or after a while).
    Idle,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The file is stored and left the spool.
    Uploaded {
        /// Object key.
        key: String,
        /// Bytes sent.
        bytes: u64,
        /// Rows in the file.
        rows: u64,
    },
    /// The object already existed (412 on `If-None-Match: *`) and reads back as this
    /// file's bytes: this batch was stored before (an earlier answer was lost); the
    /// file left the spool.
    AlreadyStored {
        /// Object key.
        key: String,
        /// Rows in the file.
        rows: u64,
    },
    /// A passing failure; the file is retried after `delay`.
    Retry {
        /// What failed.
        reason: String,
        /// The backoff delay.
        delay: Duration,
    },
    /// The clock was corrected from the server's `Date`; the file is signed again.
    Resigned {
        /// What the server said.
        reason: String,
        /// The new offset added to the device clock, in seconds.
        offset_secs: i64,
    },
    /// Uploads are paused (credentials or configuration); retried after `delay`.
    Paused {
        /// What the server or URL source said.
        reason: String,
        /// Until the next attempt.
        delay: Duration,
    },
    /// The file was moved to quarantine.
    Quarantined {
        /// Spool file name.
        file: String,
        /// Why.
        reason: String,
    },
    /// The file disappeared from storage (removed by hand); it left the queue.
    Vanished {
        /// Spool file name.
        file: String,
    },
    /// Waiting for a backoff or pause to end; nothing was sent.
    Waiting,
    /// Nothing to upload.
    Idle,
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What happened.
    pub event: Event,
    /// What to do next.
    pub next: Next,
}

/// Counters since start, for the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadCounters {
    /// Files stored (2xx).
    pub uploaded_files: u64,
    /// Bytes of those files.
    pub uploaded_bytes: u64,
    /// Rows in files that left the spool after a 2xx or 412.
    pub uploaded_rows: u64,
    /// Files found already stored (412, and the object reads back as the file).
    pub already_stored: u64,
    /// Retries after passing failures.
    pub retries: u64,
    /// Clock corrections and re-signings.
    pub resigns: u64,
    /// Steps that ended paused.
    pub pauses: u64,
    /// Files quarantined by the uploader.
    pub quarantined: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// The upload state machine; see the [module docs](self).
#[derive(Debug)]
pub struct Uploader<U> {
    source: U,
    config: UploadConfig,
    backoff: Backoff,
    pause_backoff: Backoff,
    offset_secs: i64,
    wait_until: Option<Instant>,
    paused: Option<String>,
    resigns_in_row: u32,
    counters: UploadCounters,
    /// Unclassified answers already logged at warning level (each is logged once).
    logged_unclassified: Vec<String>,
}

/// What one attempt came to, before the spool is updated.
enum Attempt {
    Done { already: bool },
    Retry(String),
    Resign(String, Option<SystemTime>),
    Pause(String),
    Reverify(String),
    Quarantine(String),
}

impl<U: UrlSource> Uploader<U> {
    /// An uploader getting URLs from `source`; `seed` drives the jitter.
    pub fn new(source: U, config: UploadConfig, seed: u64) -> Self {
        Self {
            backoff: Backoff::new(config.backoff_initial, config.backoff_max, seed),
            pause_backoff: Backoff::new(
                config.pause_initial,
                config.pause_max,
                seed.wrapping_add(1),
            ),
            source,
            config,
            offset_secs: 0,
            wait_until: None,
            paused: None,
            resigns_in_row: 0,
            counters: UploadCounters::default(),
            logged_unclassified: Vec::new(),
        }
    }

    /// The URL source (e.g. to replace credentials).
    pub fn url_source_mut(&mut self) -> &mut U {
        &mut self.source
    }

    /// Why uploads are paused, if they are.
    pub fn paused(&self) -> Option<&str> {
        self.paused.as_deref()
    }

    /// Seconds added to the device clock when signing (learnt from the server's `Date`).
    pub fn clock_offset_secs(&self) -> i64 {
        self.offset_secs
    }

    /// Sets the clock offset (e.g. restored from a previous run).
    pub fn set_clock_offset_secs(&mut self, secs: i64) {
        self.offset_secs = secs;
    }

    /// Counters since start.
    pub fn counters(&self) -> &UploadCounters {
        &self.counters
    }

    /// Ends a backoff or pause wait early (e.g. after the configuration was fixed).
    pub fn wake(&mut self) {
        self.wait_until = None;
    }

    /// The time to sign with: the device clock corrected by the learnt offset.
    pub fn signing_time(&self, clock: &impl Clock) -> SystemTime {
        shift(clock.now(), self.offset_secs)
    }

    /// Does at most one upload attempt of the oldest spooled file.
    pub fn step<S: Storage, C: Connection>(
        &mut self,
        spool: &Mutex<Spool<S>>,
        conn: &mut C,
        clock: &impl Clock,
    ) -> Step {
        let now = clock.monotonic();
        if let Some(until) = self.wait_until {
            if now < until {
                return Step {
                    event: Event::Waiting,
                    next: Next::WaitUntil(until),
                };
            }
            self.wait_until = None;
        }
        let lock = || spool.lock().unwrap_or_else(|e| e.into_inner());
        let (entry, bytes) = {
            let mut spool = lock();
            let Some(entry) = spool.take_oldest() else {
                return Step {
                    event: Event::Idle,
                    next: Next::Idle,
                };
            };
            let bytes = spool.read(&entry);
            (entry, bytes)
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::error!("spooled {} vanished (removed by hand?): {e}", entry.name);
                lock().forget(&entry);
                return Step {
                    event: Event::Vanished { file: entry.name },
                    next: Next::Now,
                };
            }
            Err(e) => {
                lock().release(&entry);
                return self.retry(format!("cannot read spooled {}: {e}", entry.name), clock);
            }
        };
        let checked = if self.config.verify_rows {
            verify_rows(&bytes)
        } else {
            read_facts(&bytes)
        };
        let facts = match checked {
            Ok(facts) => facts,
            Err(reason) => return self.quarantine(spool, &entry, reason, clock),
        };
        let attempt = self.attempt(conn, clock, &facts, &bytes);
        match attempt {
            Attempt::Done { already } => {
                let completed = lock().complete(&entry);
                if let Err(e) = completed {
                    lock().release(&entry);
                    return self.retry(
                        format!("{} is stored but cannot leave the spool: {e}", entry.name),
                        clock,
                    );
                }
                self.backoff.reset();
                self.pause_backoff.reset();
                self.resigns_in_row = 0;
                if let Some(reason) = self.paused.take() {
                    log::info!("uploads resumed (were paused: {reason})");
                }
                self.counters.uploaded_rows += facts.rows;
                let event = if already {
                    self.counters.already_stored += 1;
                    Event::AlreadyStored {
                        key: facts.object_key,
                        rows: facts.rows,
                    }
                } else {
                    self.counters.uploaded_files += 1;
                    self.counters.uploaded_bytes += bytes.len() as u64;
                    Event::Uploaded {
                        key: facts.object_key,
                        bytes: bytes.len() as u64,
                        rows: facts.rows,
                    }
                };
                Step {
                    event,
                    next: Next::Now,
                }
            }
            Attempt::Retry(reason) => {
                lock().release(&entry);
                self.retry(reason, clock)
            }
            Attempt::Resign(reason, server_date) => {
                lock().release(&entry);
                self.resign(reason, server_date, clock)
            }
            Attempt::Pause(reason) => {
                lock().release(&entry);
                self.pause(reason, clock)
            }
            Attempt::Reverify(reason) => {
                let reread = lock().read(&entry);
                match reread
                    .map_err(|e| e.to_string())
                    .and_then(|b| verify_rows(&b))
                {
                    Ok(_) => {
                        lock().release(&entry);
                        self.retry(format!("{reason} (the local file is sound)"), clock)
                    }
                    Err(corrupt) => self.quarantine(
                        spool,
                        &entry,
                        format!("{reason}; local file: {corrupt}"),
                        clock,
                    ),
                }
            }
            Attempt::Quarantine(reason) => self.quarantine(spool, &entry, reason, clock),
        }
    }

    fn attempt<C: Connection>(
        &mut self,
        conn: &mut C,
        clock: &impl Clock,
        facts: &FileFacts,
        bytes: &[u8],
    ) -> Attempt {
        let mut request = PutRequest::for_body(&facts.object_key, bytes);
        if !self.config.conditional_writes && crate::key::carries_rows_hash(&facts.object_key) {
            request.if_none_match = false;
        }
        let signed = self.source.presign(
            conn,
            std::slice::from_ref(&request),
            self.signing_time(clock),
        );
        let put = match signed {
            Ok(mut puts) if puts.len() == 1 => puts.remove(0),
            Ok(puts) => {
                return Attempt::Retry(format!(
                    "the URL source returned {} URLs for 1 request",
                    puts.len()
                ));
            }
            Err(UrlError::Unauthorized(m)) => return Attempt::Pause(m),
            Err(UrlError::Refused { reason, .. }) => {
                return Attempt::Quarantine(format!("the URL source refused the key: {reason}"));
            }
            Err(UrlError::Unavailable(m)) => {
                return Attempt::Retry(format!("upload URL unavailable: {m}"));
            }
        };
        let response = put_presigned(conn, &put, bytes);
        failpoint::hit(failpoint::AFTER_PUT);
        let response = match response {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(e.to_string()),
        };
        match crate::upload::classify(&response, &md5_hex(bytes)) {
            Outcome::Stored => Attempt::Done { already: false },
            Outcome::StoredUnproven(why) => Self::read_back(conn, &put, bytes, why, false),
            Outcome::AlreadyStored => Self::read_back(
                conn,
                &put,
                bytes,
                format!("{response}: an object exists under {}", facts.object_key),
                true,
            ),
            Outcome::Retry(r) => Attempt::Retry(r),
            Outcome::Resign {
                server_date,
                reason,
            } => Attempt::Resign(reason, server_date),
            Outcome::Pause(r) => Attempt::Pause(r),
            Outcome::Reverify(r) => Attempt::Reverify(r),
            Outcome::Reject(r) => Attempt::Quarantine(format!("the server rejected it: {r}")),
        }
    }

    /// Counts an answer that does not prove the bytes were stored (`why`) only if a GET
    /// of the key returns exactly `bytes`.
    fn read_back<C: Connection>(
        conn: &mut C,
        put: &PresignedPut,
        bytes: &[u8],
        why: String,
        already: bool,
    ) -> Attempt {
        let Some(url) = &put.verify_url else {
            return Attempt::Retry(format!(
                "{why}; the URL source gave no GET URL to read it back (update the broker), so the file stays queued"
            ));
        };
        match read_back(conn, url, bytes) {
            Ok(ReadBack::Same) => Attempt::Done { already },
            Ok(ReadBack::Differs(how)) => Attempt::Retry(format!(
                "{why}, and reading it back: {how}; the file stays queued"
            )),
            Ok(ReadBack::Failed(answer)) if matches!(answer.status, 401 | 403) => {
                Attempt::Pause(format!(
                    "{why}, and reading it back was refused ({answer}): allow s3:GetObject on the device's keys so stored files can be verified"
                ))
            }
            Ok(ReadBack::Failed(answer)) => Attempt::Retry(format!(
                "{why}, and reading it back answered {answer}; the file stays queued"
            )),
            Err(e) => Attempt::Retry(format!("{why}; reading it back failed: {e}")),
        }
    }

    fn wait(&mut self, delay: Duration, clock: &impl Clock) -> Next {
        let until = clock.monotonic() + delay;
        self.wait_until = Some(until);
        Next::WaitUntil(until)
    }

    fn retry(&mut self, reason: String, clock: &impl Clock) -> Step {
        let delay = self.backoff.next_delay();
        self.counters.retries += 1;
        if !reason.starts_with(crate::upload::UNCLASSIFIED) {
            log::warn!("upload failed, retrying in {delay:?}: {reason}");
        } else if self.logged_unclassified.contains(&reason) {
            log::debug!("upload failed again, retrying in {delay:?}: {reason}");
        } else {
            log::warn!("upload failed, retrying in {delay:?} (logged once): {reason}");
            if self.logged_unclassified.len() < 16 {
                self.logged_unclassified.push(reason.clone());
            }
        }
        self.counters.last_error = Some(reason.clone());
        Step {
            next: self.wait(delay, clock),
            event: Event::Retry { reason, delay },
        }
    }

    fn resign(
        &mut self,
        reason: String,
        server_date: Option<SystemTime>,
        clock: &impl Clock,
    ) -> Step {
        self.resigns_in_row += 1;
        if self.source.signs_with_own_clock() {
            // The broker signed with its clock: the device's offset changes nothing. A
            // URL that expired on the way is fixed by a fresh one, once; a skew that
            // stays is the broker host's clock.
            if self.resigns_in_row > 1 {
                return self.retry(
                    format!(
                        "{reason} (again with a fresh URL: the presign broker signs with its own clock, which is off from the storage server's; correct the broker host's clock, e.g. with NTP)"
                    ),
                    clock,
                );
            }
            self.counters.resigns += 1;
            log::warn!("{reason}: asking the presign broker for a fresh URL");
            self.counters.last_error = Some(reason.clone());
            return Step {
                event: Event::Resigned {
                    reason,
                    offset_secs: self.offset_secs,
                },
                next: Next::Now,
            };
        }
        let Some(server) = server_date.filter(|_| self.resigns_in_row <= self.config.max_resigns)
        else {
            return self.retry(
                format!("{reason} (the clock could not be corrected)"),
                clock,
            );
        };
        let device = clock.now();
        let offset = match server.duration_since(device) {
            Ok(ahead) => ahead.as_secs() as i64,
            Err(behind) => -(behind.duration().as_secs() as i64),
        };
        self.offset_secs = offset;
        self.counters.resigns += 1;
        log::warn!("{reason}: the device clock is off by {offset} s; signing again");
        self.counters.last_error = Some(reason.clone());
        Step {
            event: Event::Resigned {
                reason,
                offset_secs: offset,
            },
            next: Next::Now,
        }
    }

    fn pause(&mut self, reason: String, clock: &impl Clock) -> Step {
        // Equal jitter: the n-th pause in a row waits between half and all of
        // min(pause_max, pause_initial × 2^(n-1)) — 5 to 10 s first with the defaults.
        let delay = self.pause_backoff.next_delay_from_half();
        self.counters.pauses += 1;
        log::error!(
            "uploads PAUSED (credentials or configuration), next try in {delay:?}: {reason}"
        );
        self.counters.last_error = Some(reason.clone());
        self.paused = Some(reason.clone());
        Step {
            next: self.wait(delay, clock),
            event: Event::Paused { reason, delay },
        }
    }

    fn quarantine<S: Storage>(
        &mut self,
        spool: &Mutex<Spool<S>>,
        entry: &SpoolEntry,
        reason: String,
        clock: &impl Clock,
    ) -> Step {
        let mut spool = spool.lock().unwrap_or_else(|e| e.into_inner());
        match spool.quarantine(entry, &reason) {
            Ok(()) => {
                self.counters.quarantined += 1;
                Step {
                    event: Event::Quarantined {
                        file: entry.name.clone(),
                        reason,
                    },
                    next: Next::Now,
                }
            }
            Err(e) => {
                spool.release(entry);
                drop(spool);
                self.retry(
                    format!("cannot quarantine {} ({reason}): {e}", entry.name),
                    clock,
                )
            }
        }
    }
}
