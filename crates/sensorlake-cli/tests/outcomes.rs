//! Every outcome class of the upload state machine, against the real embedded S3 server
//! (SigV4 on) behind the fault proxy: passing failures are retried with backoff, an
//! expired URL or a skewed clock is corrected from the server's Date header, a wrong
//! secret pauses the queue until fixed, BadDigest re-verifies the local file, a lost
//! answer ends in 412 (no duplicate), a rejected request is quarantined, and unreadable
//! files never block the queue.
//!
//! Waits are not slept: the test clock's monotonic time jumps to each `WaitUntil`.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::fault_proxy::{Fault, FaultPlan, FaultProxy};
use common::{Lake, SECRET_KEY};
use embedded_svc::http::client::Connection;
use sensorlake::batch::{Batch, Value};
use sensorlake::clock::{Clock, shift};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::presign::{PresignedPut, PutRequest, Signer};
use sensorlake::schema::{Channel, Schema};
use sensorlake::spool::{Spool, SpoolConfig, SpoolEntry};
use sensorlake::storage::{StdStorage, Storage};
use sensorlake::uploader::{Event, Next, UploadConfig, Uploader};
use sensorlake::url_source::{UrlError, UrlSource};
use sensorlake_cli::http::{HostConnection, HttpConfig};

const T0: i64 = 1_709_280_000_000_000;

/// Real wall time shifted by an offset; monotonic time that moves only when told.
struct TestClock {
    offset_secs: i64,
    monotonic: Mutex<Instant>,
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        shift(SystemTime::now(), self.offset_secs)
    }
    fn monotonic(&self) -> Instant {
        *self.monotonic.lock().unwrap()
    }
}

/// Signs with a signer, and can truncate a spooled file just before its PUT.
struct Sabotage {
    signer: Signer,
    truncate: Option<PathBuf>,
}

impl UrlSource for Sabotage {
    fn presign<C: Connection>(
        &mut self,
        conn: &mut C,
        requests: &[PutRequest],
        now: SystemTime,
    ) -> Result<Vec<PresignedPut>, UrlError> {
        if let Some(path) = self.truncate.take() {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        }
        self.signer.presign(conn, requests, now)
    }
}

struct Rig {
    lake: Lake,
    proxy: FaultProxy,
    spool_dir: tempfile::TempDir,
    spool: Mutex<Spool<StdStorage>>,
    uploader: Uploader<Sabotage>,
    conn: HostConnection,
    clock: TestClock,
}

impl Rig {
    fn new() -> Self {
        let lake = Lake::start();
        let proxy = FaultProxy::start(lake.server.addr(), FaultPlan::pass()).unwrap();
        let signer = lake.signer(&proxy.endpoint(), SECRET_KEY);
        let spool_dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(StdStorage::new(spool_dir.path()), SpoolConfig::default()).unwrap();
        let conn = HostConnection::new(HttpConfig {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_millis(400),
            ca_file: None,
        })
        .unwrap();
        Self {
            uploader: Uploader::new(
                Sabotage {
                    signer,
                    truncate: None,
                },
                UploadConfig::default(),
                42,
            ),
            lake,
            proxy,
            spool_dir,
            spool: Mutex::new(spool),
            conn,
            clock: TestClock {
                offset_secs: 0,
                monotonic: Mutex::new(Instant::now()),
            },
        }
    }

    /// Spools a real file of 50 rows starting at row `first`; returns its bytes.
    fn spool_file(&self, first: i64) -> (SpoolEntry, Vec<u8>) {
        let schema = Arc::new(Schema::new(vec![Channel::f32("v")]).unwrap());
        let rows: Vec<(i64, Vec<Value>)> = (first..first + 50)
            .map(|i| (T0 + i * 1_000_000, vec![Value::F32(i as f32)]))
            .collect();
        let batch =
            Batch::from_rows(schema.clone(), rows.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
        let device = DeviceId::new("gw-1").unwrap();
        let key = KeyTemplate::new(Layout::Hive, "raw")
            .unwrap()
            .render(&device, &batch)
            .unwrap();
        let bytes = Encoder::new(schema, EncodeOptions::default())
            .unwrap()
            .encode_to_vec(
                &batch,
                &FileMetadata {
                    device_id: &device,
                    object_key: &key,
                },
            )
            .unwrap();
        let entry = self.spool.lock().unwrap().push(&bytes, None).unwrap();
        (entry, bytes)
    }

    /// One step; a wait is skipped by moving the monotonic clock. Returns the event and
    /// the wait it asked for.
    fn step(&mut self) -> (Event, Option<Duration>) {
        let step = self.uploader.step(&self.spool, &mut self.conn, &self.clock);
        let mut waited = None;
        if let Next::WaitUntil(t) = step.next {
            let mut now = self.clock.monotonic.lock().unwrap();
            waited = Some(t - *now);
            *now = t;
        }
        (step.event, waited)
    }

    fn stored_objects(&self) -> usize {
        self.lake.rows("raw/").objects
    }

    fn waiting(&self) -> usize {
        self.spool.lock().unwrap().stats().ready_files
    }
}

fn reason(event: &Event) -> String {
    match event {
        Event::Retry { reason, .. }
        | Event::Paused { reason, .. }
        | Event::Resigned { reason, .. }
        | Event::Quarantined { reason, .. } => reason.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn passing_failures_are_retried_with_capped_exponential_backoff() {
    let mut rig = Rig::new();
    rig.spool_file(0);
    rig.proxy.script([
        Fault::Reset,
        Fault::Stall,
        Fault::Error500,
        Fault::SlowDown503,
        Fault::TooMany429,
    ]);
    let expectations = ["", "timed out", "500 InternalError", "SlowDown", "429"];
    let ceilings = [250, 500, 1000, 2000, 4000];
    for (said, ceiling) in expectations.iter().zip(ceilings) {
        let (event, waited) = rig.step();
        assert!(matches!(event, Event::Retry { .. }), "{event:?}");
        assert!(
            reason(&event).contains(said),
            "{event:?} should mention {said:?}"
        );
        let waited = waited.expect("a retry waits");
        assert!(
            waited <= Duration::from_millis(ceiling),
            "{waited:?} > {ceiling} ms"
        );
        assert_eq!(rig.waiting(), 1, "the file stays spooled");
    }
    // While a wait is not over, a step sends nothing.
    rig.proxy.script([Fault::Error500]);
    *rig.clock.monotonic.lock().unwrap() += Duration::from_secs(60);
    let first = rig.uploader.step(&rig.spool, &mut rig.conn, &rig.clock);
    assert!(matches!(first.event, Event::Retry { .. }), "{first:?}");
    let early = rig.uploader.step(&rig.spool, &mut rig.conn, &rig.clock);
    assert_eq!(early.event, Event::Waiting);
    assert_eq!(early.next, first.next);
    // A wait is due: the next attempt passes.
    *rig.clock.monotonic.lock().unwrap() += Duration::from_secs(60);
    let (event, _) = rig.step();
    assert!(
        matches!(event, Event::Uploaded { rows: 50, .. }),
        "{event:?}"
    );
    assert_eq!(rig.waiting(), 0);
    let counts = rig.proxy.counts();
    assert_eq!(counts.get(&Fault::Pass), Some(&1), "{counts:?}");
    assert_eq!(rig.lake.rows("raw/").rows.len(), 50);
    // The backoff starts over after a success.
    rig.spool_file(100);
    rig.proxy.script([Fault::Error500]);
    let (_, waited) = rig.step();
    assert!(waited.unwrap() <= Duration::from_millis(250));
    assert_eq!(rig.uploader.counters().retries, 7);
}

#[test]
fn a_lost_answer_is_followed_by_412_and_no_duplicate() {
    let mut rig = Rig::new();
    rig.spool_file(0);
    rig.proxy.script([Fault::DropResponse]);
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Retry { .. }), "{event:?}");
    assert_eq!(rig.stored_objects(), 1, "the server stored it anyway");
    assert_eq!(rig.waiting(), 1, "the uploader could not know");
    let (event, _) = rig.step();
    assert!(
        matches!(event, Event::AlreadyStored { rows: 50, .. }),
        "{event:?}"
    );
    assert_eq!(rig.waiting(), 0);
    let stored = rig.lake.rows("raw/");
    assert_eq!((stored.objects, stored.rows.len()), (1, 50));
    assert!(stored.rows.values().all(|copies| copies.len() == 1));
}

#[test]
fn bad_digest_retries_a_sound_file_and_quarantines_a_corrupt_one() {
    let mut rig = Rig::new();
    rig.spool_file(0);
    rig.proxy.script([Fault::CorruptBody]);
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Retry { .. }), "{event:?}");
    assert!(
        reason(&event).contains("BadDigest") && reason(&event).contains("sound"),
        "{event:?}"
    );
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");

    // Now the local file goes bad while its body is corrupted on the way too.
    let (entry, _) = rig.spool_file(100);
    rig.uploader.url_source_mut().truncate = Some(rig.spool_dir.path().join(entry.path()));
    rig.proxy.script([Fault::CorruptBody]);
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Quarantined { .. }), "{event:?}");
    assert!(
        reason(&event).contains("BadDigest") && reason(&event).contains("local file"),
        "{event:?}"
    );
    let quarantined = rig.spool.lock().unwrap().quarantined().unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        rig.stored_objects(),
        1,
        "the corrupt file never reached the lake"
    );
}

#[test]
fn a_rejected_request_is_quarantined_with_the_answer_and_requeue_brings_it_back() {
    let mut rig = Rig::new();
    rig.spool_file(0);
    rig.spool_file(100);
    rig.proxy.script([Fault::EntityTooLarge]);
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Quarantined { .. }), "{event:?}");
    assert!(reason(&event).contains("EntityTooLarge"), "{event:?}");
    let (event, _) = rig.step();
    assert!(
        matches!(event, Event::Uploaded { .. }),
        "the queue goes on: {event:?}"
    );
    assert_eq!(rig.step().0, Event::Idle);

    let q = rig.spool.lock().unwrap().quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert!(
        q[0].reason.contains("HTTP 400 EntityTooLarge"),
        "{}",
        q[0].reason
    );
    rig.spool.lock().unwrap().requeue(None).unwrap();
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");
    assert_eq!(rig.lake.rows("raw/").rows.len(), 100);
}

#[test]
fn a_wrong_secret_pauses_the_queue_until_it_is_fixed() {
    let mut rig = Rig::new();
    rig.spool_file(0);
    rig.spool_file(100);
    let endpoint = rig.proxy.endpoint();
    rig.uploader.url_source_mut().signer = rig
        .lake
        .signer(&endpoint, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY");
    let mut pauses = Vec::new();
    for _ in 0..4 {
        let (event, waited) = rig.step();
        assert!(matches!(event, Event::Paused { .. }), "{event:?}");
        assert!(
            reason(&event).contains("SignatureDoesNotMatch"),
            "{event:?}"
        );
        pauses.push(waited.unwrap());
    }
    assert!(
        rig.uploader
            .paused()
            .unwrap()
            .contains("SignatureDoesNotMatch")
    );
    // The n-th pause waits between half and all of 10 s × 2^(n-1), as documented.
    for (n, pause) in pauses.iter().enumerate() {
        let ceiling = Duration::from_secs(10 << n);
        assert!(
            *pause >= ceiling / 2 && *pause <= ceiling,
            "pause {n}: {pauses:?}"
        );
    }
    assert_eq!(rig.waiting(), 2, "nothing left the queue");
    assert!(
        rig.spool.lock().unwrap().quarantined().unwrap().is_empty(),
        "nothing quarantined"
    );

    rig.uploader.url_source_mut().signer = rig.lake.signer(&endpoint, SECRET_KEY);
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");
    assert_eq!(rig.uploader.paused(), None);
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");

    // A missing bucket pauses too.
    rig.spool_file(200);
    let mut target = rig.lake.target(&endpoint);
    target.bucket = "no-such-lake".into();
    rig.uploader.url_source_mut().signer = Signer::new(
        &target,
        &sensorlake::presign::Credentials::new(common::ACCESS_KEY, SECRET_KEY),
        Duration::from_secs(300),
    )
    .unwrap();
    let (event, _) = rig.step();
    assert!(
        reason(&event).contains("NoSuchBucket") && matches!(event, Event::Paused { .. }),
        "{event:?}"
    );
}

#[test]
fn a_skewed_clock_is_corrected_from_the_server_date() {
    for (offset, said, corrected) in [
        (-3600, "Request has expired", 3600),
        (3600, "RequestTimeTooSkewed", -3600),
    ] {
        let mut rig = Rig::new();
        rig.clock.offset_secs = offset;
        rig.spool_file(0);
        let (event, waited) = rig.step();
        let Event::Resigned { offset_secs, .. } = event else {
            panic!("{offset}: {event:?}");
        };
        assert!(reason(&event).contains(said), "{event:?}");
        assert!(
            (offset_secs - corrected).abs() <= 2,
            "{offset}: learnt {offset_secs}"
        );
        assert_eq!(waited, None, "signed again at once");
        let (event, _) = rig.step();
        assert!(
            matches!(event, Event::Uploaded { .. }),
            "{offset}: {event:?}"
        );
        assert_eq!(rig.uploader.clock_offset_secs(), offset_secs);
    }
}

#[test]
fn unreadable_files_are_quarantined_without_blocking_the_queue() {
    let mut rig = Rig::new();
    let (_, good) = rig.spool_file(0);
    let storage = StdStorage::new(rig.spool_dir.path());
    // Written as if by an earlier run: a truncated file and one that is not Parquet.
    storage
        .write("ready/00000001.pq", &good[..good.len() - 100])
        .unwrap();
    storage
        .write("ready/00000002.pq", b"timestamp,v\n1,2\n")
        .unwrap();
    storage.write("ready/00000003.pq", b"").unwrap();
    *rig.spool.lock().unwrap() = Spool::open(storage, SpoolConfig::default()).unwrap();
    rig.spool_file(100);
    let mut events = Vec::new();
    loop {
        let (event, _) = rig.step();
        if event == Event::Idle {
            break;
        }
        events.push(event);
    }
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(matches!(events[0], Event::Uploaded { .. }), "{events:?}");
    assert!(
        events[1..4]
            .iter()
            .all(|e| matches!(e, Event::Quarantined { .. })),
        "{events:?}"
    );
    assert!(
        matches!(events[4], Event::Uploaded { .. }),
        "the queue goes on: {events:?}"
    );
    let q = rig.spool.lock().unwrap().quarantined().unwrap();
    let names: Vec<&str> = q.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, ["00000001.pq", "00000002.pq", "00000003.pq"]);
    assert!(
        q.iter()
            .all(|q| q.reason.contains("not a readable Parquet file")),
        "{q:?}"
    );
    assert_eq!(rig.lake.rows("raw/").rows.len(), 100);
    assert_eq!(rig.uploader.counters().retries, 0);
}

#[test]
fn a_file_removed_by_hand_leaves_the_queue_without_blocking_it() {
    let mut rig = Rig::new();
    let (entry, _) = rig.spool_file(0);
    rig.spool_file(100);
    std::fs::remove_file(rig.spool_dir.path().join(entry.path())).unwrap();
    let (event, _) = rig.step();
    assert_eq!(event, Event::Vanished { file: entry.name });
    let (event, _) = rig.step();
    assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");
    assert_eq!(rig.step().0, Event::Idle);
}

/// Answers the embedded server never gives, replayed by the proxy as the services
/// document them (status, headers, XML body) and read through the real HTTP client.
mod documented {
    use super::*;
    use crate::common::fault_proxy::Documented;

    #[test]
    fn passing_conflicts_and_cut_bodies_are_retried_with_backoff() {
        for (answer, said) in [
            (
                Documented::ConditionalRequestConflict,
                "409 ConditionalRequestConflict",
            ),
            (Documented::IncompleteBody, "400 IncompleteBody"),
            (Documented::RequestTimeout, "400 RequestTimeout"),
        ] {
            let mut rig = Rig::new();
            rig.spool_file(0);
            rig.proxy.script([Fault::Documented(answer)]);
            let (event, waited) = rig.step();
            assert!(
                matches!(event, Event::Retry { .. }),
                "{answer:?}: {event:?}"
            );
            assert!(reason(&event).contains(said), "{event:?}");
            assert!(waited.is_some(), "{answer:?}: a retry waits");
            assert_eq!(rig.waiting(), 1);
            let (event, _) = rig.step();
            assert!(
                matches!(event, Event::Uploaded { .. }),
                "{answer:?}: {event:?}"
            );
            assert!(rig.spool.lock().unwrap().quarantined().unwrap().is_empty());
        }
    }

    #[test]
    fn time_answers_correct_the_clock_from_the_date_and_sign_again() {
        for (answer, offset, said) in [
            (Documented::NotYetValid, 3600, "Request is not yet valid"),
            (Documented::R2ExpiredRequest, -3600, "ExpiredRequest"),
            (Documented::GarageDateTooOld, -600, "Date is too old"),
        ] {
            let mut rig = Rig::new();
            rig.clock.offset_secs = offset;
            rig.spool_file(0);
            rig.proxy.script([Fault::Documented(answer)]);
            let (event, waited) = rig.step();
            let Event::Resigned { offset_secs, .. } = event else {
                panic!("{answer:?}: {event:?}");
            };
            assert!(reason(&event).contains(said), "{event:?}");
            assert!(
                (offset_secs + offset).abs() <= 2,
                "{answer:?}: device {offset} s off, learnt {offset_secs}"
            );
            assert_eq!(waited, None, "signed again at once");
            let (event, _) = rig.step();
            assert!(
                matches!(event, Event::Uploaded { .. }),
                "{answer:?}: {event:?}"
            );
        }
    }

    #[test]
    fn no_conditional_writes_pauses_with_a_clear_status() {
        let mut rig = Rig::new();
        rig.spool_file(0);
        rig.proxy
            .script([Fault::Documented(Documented::NotImplemented); 3]);
        for _ in 0..3 {
            let (event, waited) = rig.step();
            assert!(matches!(event, Event::Paused { .. }), "{event:?}");
            assert!(
                reason(&event).contains("does not support If-None-Match"),
                "{event:?}"
            );
            assert!(waited.unwrap() >= Duration::from_secs(5), "no tight loop");
        }
        assert_eq!(rig.waiting(), 1, "the file stays queued");
        assert!(rig.spool.lock().unwrap().quarantined().unwrap().is_empty());
    }

    #[test]
    fn redirects_and_wrong_regions_pause_naming_the_region_or_endpoint() {
        for (answer, hint) in [
            (Documented::PermanentRedirect, "region = \"eu-west-1\""),
            (Documented::WrongRegion, "region = \"eu-west-1\""),
            (
                Documented::TemporaryRedirect,
                "lake.s3-eu-west-1.amazonaws.com",
            ),
        ] {
            let mut rig = Rig::new();
            rig.spool_file(0);
            rig.proxy.script([Fault::Documented(answer)]);
            let (event, _) = rig.step();
            assert!(
                matches!(event, Event::Paused { .. }),
                "{answer:?}: {event:?}"
            );
            assert!(reason(&event).contains(hint), "{answer:?}: {event:?}");
            assert!(rig.uploader.paused().unwrap().contains(hint));
            assert_eq!(rig.waiting(), 1);
        }
    }

    #[test]
    fn an_unclassified_answer_keeps_the_file_and_backs_off() {
        let mut rig = Rig::new();
        rig.spool_file(0);
        rig.proxy
            .script([Fault::Documented(Documented::Unclassified); 4]);
        let mut waits = Vec::new();
        for _ in 0..4 {
            let (event, waited) = rig.step();
            assert!(matches!(event, Event::Retry { .. }), "{event:?}");
            assert!(
                reason(&event).contains("TeapotError")
                    && reason(&event).contains("An answer no documentation lists"),
                "{event:?}"
            );
            waits.push(waited.unwrap());
        }
        assert!(
            waits.iter().all(|w| !w.is_zero()),
            "never a tight loop: {waits:?}"
        );
        let (event, _) = rig.step();
        assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");
    }
}

/// Answers that do not prove the server stored these bytes: a non-MD5 ETag, a 200 or
/// 412 for bytes it does not hold. A file leaves the spool only once a GET of its key
/// returns exactly its bytes.
mod read_back {
    use super::*;
    use sensorlake::upload::put_presigned;

    /// Stores `body` under `key` directly in the lake, unconditionally.
    fn store_directly(rig: &Rig, key: &str, body: &[u8]) {
        let signer = rig.lake.signer(&rig.lake.server.endpoint(), SECRET_KEY);
        let put = signer
            .presign_put(&PutRequest::key_only(key), SystemTime::now())
            .unwrap();
        let mut conn = HostConnection::new(HttpConfig::default()).unwrap();
        let answer = put_presigned(&mut conn, &put, body).unwrap();
        assert_eq!(answer.status, 200, "{answer}");
    }

    fn key_of(bytes: &[u8]) -> String {
        sensorlake::spool::read_facts(bytes).unwrap().object_key
    }

    #[test]
    fn an_etag_that_is_not_an_md5_counts_once_the_object_reads_back_the_same() {
        let mut rig = Rig::new();
        let (_, bytes) = rig.spool_file(0);
        rig.proxy.script([Fault::EtagNotMd5]);
        let (event, _) = rig.step();
        assert!(
            matches!(event, Event::Uploaded { rows: 50, .. }),
            "{event:?}"
        );
        assert_eq!(rig.lake.get(&key_of(&bytes)), bytes);
        assert_eq!(rig.waiting(), 0);
        assert_eq!(rig.proxy.counts().get(&Fault::Pass), Some(&1), "one GET");
    }

    #[test]
    fn a_200_for_bytes_not_stored_keeps_the_file_and_says_why() {
        for fault in [Fault::Unstored200, Fault::CorruptedStored200] {
            let mut rig = Rig::new();
            let (_, bytes) = rig.spool_file(0);
            rig.proxy.script([fault]);
            let (event, waited) = rig.step();
            assert!(matches!(event, Event::Retry { .. }), "{fault:?}: {event:?}");
            let why = reason(&event);
            match fault {
                Fault::Unstored200 => assert!(
                    why.contains("not an MD5") && why.contains("404") && why.contains("stays"),
                    "{why}"
                ),
                _ => assert!(
                    why.contains("is not the body's MD5") && why.contains("local file is sound"),
                    "{why}"
                ),
            }
            assert!(waited.is_some(), "a retry waits");
            assert_eq!(rig.waiting(), 1, "{fault:?}: the file stays");
            assert_eq!(rig.uploader.counters().uploaded_rows, 0, "nothing counted");
            let (event, _) = rig.step();
            assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");
            assert_eq!(rig.lake.get(&key_of(&bytes)), bytes);
        }
    }

    #[test]
    fn a_412_is_already_there_only_when_the_stored_object_is_this_file() {
        // 412 without any object: not counted; the next attempt stores it.
        let mut rig = Rig::new();
        rig.spool_file(0);
        rig.proxy.script([Fault::Unfounded412]);
        let (event, _) = rig.step();
        assert!(matches!(event, Event::Retry { .. }), "{event:?}");
        assert!(reason(&event).contains("404"), "{event:?}");
        assert_eq!(rig.uploader.counters().already_stored, 0);
        let (event, _) = rig.step();
        assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");

        // 412 because other bytes are stored under the key: the file stays, saying so,
        // however often it is tried.
        let mut rig = Rig::new();
        let (_, bytes2) = rig.spool_file(100);
        let key = key_of(&bytes2);
        store_directly(&rig, &key, b"someone else's bytes");
        for _ in 0..3 {
            let (event, waited) = rig.step();
            assert!(matches!(event, Event::Retry { .. }), "{event:?}");
            assert!(
                reason(&event).contains("412") && reason(&event).contains("differs"),
                "{event:?}"
            );
            assert!(waited.is_some());
        }
        assert_eq!(rig.waiting(), 1, "the file stays");
        assert_eq!(
            rig.lake.get(&key),
            b"someone else's bytes",
            "never overwritten"
        );
        assert_eq!(rig.uploader.counters().uploaded_rows, 0);
    }

    #[test]
    fn without_a_get_url_an_unproven_answer_keeps_the_file() {
        struct NoGet(Signer);
        impl UrlSource for NoGet {
            fn presign<C: Connection>(
                &mut self,
                conn: &mut C,
                requests: &[PutRequest],
                now: SystemTime,
            ) -> Result<Vec<PresignedPut>, UrlError> {
                let mut puts = self.0.presign(conn, requests, now)?;
                for put in &mut puts {
                    put.verify_url = None;
                }
                Ok(puts)
            }
        }
        let mut rig = Rig::new();
        rig.spool_file(0);
        let signer = rig.lake.signer(&rig.proxy.endpoint(), SECRET_KEY);
        let mut uploader = Uploader::new(NoGet(signer), UploadConfig::default(), 7);
        rig.proxy.script([Fault::EtagNotMd5]);
        let step = uploader.step(&rig.spool, &mut rig.conn, &rig.clock);
        assert!(
            matches!(step.event, Event::Retry { .. }),
            "{:?}",
            step.event
        );
        assert!(
            reason(&step.event).contains("no GET URL"),
            "{:?}",
            step.event
        );
        assert_eq!(rig.waiting(), 1);
    }

    #[test]
    fn without_conditional_writes_only_keys_with_the_rows_hash_skip_the_condition() {
        let mut rig = Rig::new();
        rig.uploader = Uploader::new(
            Sabotage {
                signer: rig.lake.signer(&rig.proxy.endpoint(), SECRET_KEY),
                truncate: None,
            },
            UploadConfig {
                conditional_writes: false,
                // The plain OpenSensor-style name below is not this batch's key.
                verify_rows: false,
                ..UploadConfig::default()
            },
            42,
        );
        // A hive key carries the hash: written without If-None-Match, so a server
        // without conditional writes takes it.
        let (_, bytes) = rig.spool_file(0);
        rig.proxy
            .script([Fault::Documented(Documented::NotImplemented)]);
        let (event, _) = rig.step();
        assert!(matches!(event, Event::Uploaded { .. }), "{event:?}");
        assert_eq!(rig.lake.get(&key_of(&bytes)), bytes);

        // A plain data_HHMM.parquet name keeps the condition and pauses.
        let schema = Arc::new(Schema::new(vec![Channel::f32("v")]).unwrap());
        let batch = Batch::from_rows(schema.clone(), [(T0, [Value::F32(1.0)].as_slice())]).unwrap();
        let device = DeviceId::new("gw-1").unwrap();
        let plain = "station=gw-1/year=2024/month=03/day=01/data_0815.parquet";
        let file = Encoder::new(schema, EncodeOptions::default())
            .unwrap()
            .encode_to_vec(
                &batch,
                &FileMetadata {
                    device_id: &device,
                    object_key: plain,
                },
            )
            .unwrap();
        rig.spool.lock().unwrap().push(&file, None).unwrap();
        rig.proxy
            .script([Fault::Documented(Documented::NotImplemented)]);
        let (event, _) = rig.step();
        assert!(matches!(event, Event::Paused { .. }), "{event:?}");
        assert!(reason(&event).contains("If-None-Match"), "{event:?}");
        assert_eq!(rig.waiting(), 1);
    }

    use crate::common::fault_proxy::Documented;
}
