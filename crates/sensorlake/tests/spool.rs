//! The spool on real files (std::fs) and on the crash-simulating storage (which refuses
//! renames onto existing names, like FAT): resume, positions, capacity policies, a full
//! disk, quarantine and requeue, and the checks that decide what is quarantined.

use std::io;
use std::sync::Arc;

use sensorlake::batch::{Batch, Value};
use sensorlake::encode::{EncodeOptions, Encoder, FileMetadata};
use sensorlake::key::{DeviceId, KeyTemplate, Layout};
use sensorlake::schema::{Channel, Schema};
use sensorlake::sim_storage::{SimOp, SimStorage};
use sensorlake::spool::{
    MAX_SEQ, QUARANTINE, READY, STATE, Spool, SpoolConfig, SpoolError, TMP, WhenFull, entry_name,
    foreign_entries, read_facts, ready_files, verify_rows,
};
use sensorlake::storage::{NotAFile, StdStorage, Storage};

const T0: i64 = 1_709_280_000_000_000;

/// A real encoded file of `rows` rows starting at row `first`, with its key inside.
fn file(first: i64, rows: i64) -> Vec<u8> {
    let schema =
        Arc::new(Schema::new(vec![Channel::f32("t"), Channel::f32("h").nullable()]).unwrap());
    let data: Vec<(i64, Vec<Value>)> = (first..first + rows)
        .map(|i| (T0 + i * 1_000_000, vec![Value::F32(i as f32), Value::Null]))
        .collect();
    let batch =
        Batch::from_rows(schema.clone(), data.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let device = DeviceId::new("gw-1").unwrap();
    let key = KeyTemplate::new(Layout::Hive, "raw")
        .unwrap()
        .render(&device, &batch)
        .unwrap();
    Encoder::new(schema, EncodeOptions::default())
        .unwrap()
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: &device,
                object_key: &key,
            },
        )
        .unwrap()
}

fn names(storage: &impl Storage, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = storage
        .list(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

fn config(max_files: usize, max_bytes: u64, when_full: WhenFull) -> SpoolConfig {
    SpoolConfig {
        max_bytes,
        max_files,
        when_full,
    }
}

#[test]
fn resume_removes_tmp_leftovers_and_keeps_every_ready_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StdStorage::new(dir.path());
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    for i in 0..3 {
        spool
            .push(&file(i * 10, 10), Some((i as u64 + 1) * 100))
            .unwrap();
    }
    drop(spool);
    storage
        .write("tmp/00000003-00000000000001f4.pq", b"half a fi")
        .unwrap();

    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert!(names(&storage, TMP).is_empty(), "tmp leftovers are removed");
    assert_eq!(spool.stats().removed_tmp, 1);
    let waiting: Vec<_> = spool.entries().map(|e| (e.seq, e.position)).collect();
    assert_eq!(waiting, [(0, Some(100)), (1, Some(200)), (2, Some(300))]);
    assert_eq!(spool.position(), Some(300));
    // The next file continues the numbering; names stay within FAT/LittleFS limits.
    let next = spool.push(&file(30, 10), Some(400)).unwrap();
    assert_eq!(next.seq, 3);
    assert!(next.name.len() <= 32, "{}", next.name);
    let oldest = spool.take_oldest().unwrap();
    assert_eq!(oldest.seq, 0);
    assert_eq!(spool.read(&oldest).unwrap(), file(0, 10));
}

#[test]
fn the_position_survives_uploading_every_file() {
    let storage = SimStorage::new(1);
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    spool.push(&file(0, 5), Some(50)).unwrap();
    spool.push(&file(5, 5), Some(90)).unwrap();
    while let Some(entry) = spool.take_oldest() {
        spool.complete(&entry).unwrap();
    }
    assert!(names(&storage, READY).is_empty());
    let marker = storage.list(STATE).unwrap();
    assert_eq!(marker.len(), 1, "one marker");
    let reopened = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert_eq!(reopened.position(), Some(90));
    assert!(reopened.is_empty());
    drop(reopened);
    // After a power loss an unsynced removal may be undone (the file is then sent again
    // and answered 412), but the position never goes back.
    for _ in 0..20 {
        storage.reboot();
        let spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
        assert_eq!(spool.position(), Some(90));
    }
}

#[test]
fn refuse_new_keeps_the_new_file_out_and_takes_it_once_there_is_room() {
    let storage = SimStorage::new(2);
    let mut spool = Spool::open(storage.clone(), config(2, 1 << 20, WhenFull::RefuseNew)).unwrap();
    spool.push(&file(0, 10), None).unwrap();
    spool.push(&file(10, 10), None).unwrap();
    let err = spool.push(&file(20, 10), None).unwrap_err();
    assert!(matches!(err, SpoolError::Full { files: 2, .. }), "{err}");
    assert!(err.to_string().contains("spool full"), "{err}");
    assert_eq!(names(&storage, READY).len(), 2);
    assert!(names(&storage, TMP).is_empty());

    let oldest = spool.take_oldest().unwrap();
    spool.complete(&oldest).unwrap();
    spool.push(&file(20, 10), None).unwrap();
    assert_eq!(spool.stats().ready_files, 2);

    // By bytes too.
    let size = file(0, 10).len() as u64;
    let mut small = Spool::open(
        SimStorage::new(3),
        config(100, size * 2, WhenFull::RefuseNew),
    )
    .unwrap();
    small.push(&file(0, 10), None).unwrap();
    small.push(&file(0, 10), None).unwrap();
    assert!(matches!(
        small.push(&file(0, 10), None),
        Err(SpoolError::Full { .. })
    ));
    let large = file(0, 5000);
    assert!(
        large.len() as u64 > size * 2,
        "the large file must exceed max_bytes"
    );
    assert!(matches!(
        small.push(&large, None),
        Err(SpoolError::TooLarge { .. })
    ));
}

#[test]
fn drop_oldest_counts_dropped_files_and_rows_and_spares_the_file_being_sent() {
    let storage = SimStorage::new(4);
    let mut spool = Spool::open(storage.clone(), config(3, 1 << 20, WhenFull::DropOldest)).unwrap();
    for i in 0..3 {
        spool.push(&file(i * 10, 10 + i), Some(i as u64)).unwrap();
    }
    let sending = spool.take_oldest().unwrap();
    assert_eq!(sending.seq, 0);
    spool.push(&file(100, 7), Some(3)).unwrap();
    let stats = spool.stats();
    assert_eq!(
        (stats.dropped_files, stats.dropped_rows),
        (1, 11),
        "seq 1 (11 rows) dropped"
    );
    let waiting: Vec<u64> = spool.entries().map(|e| e.seq).collect();
    assert_eq!(waiting, [0, 2, 3]);
    spool.complete(&sending).unwrap();
    spool.push(&file(200, 1), Some(4)).unwrap();
    spool.push(&file(201, 1), Some(5)).unwrap();
    let stats = spool.stats();
    assert_eq!((stats.dropped_files, stats.dropped_rows), (2, 23));
    assert_eq!(stats.position, Some(5));
}

#[test]
fn a_full_disk_is_an_error_that_leaves_nothing_behind() {
    let storage = SimStorage::new(5);
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    spool.push(&file(0, 10), Some(1)).unwrap();
    let used = storage.used_bytes();
    storage.set_capacity(Some(used + 100));
    let err = spool.push(&file(10, 10), Some(2)).unwrap_err();
    assert!(matches!(err, SpoolError::NoSpace(_)), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    assert!(
        names(&storage, TMP).is_empty(),
        "the partial file is removed"
    );
    assert_eq!(spool.stats().ready_files, 1);
    assert_eq!(spool.position(), Some(1), "the position did not move");
    storage.set_capacity(None);
    spool.push(&file(10, 10), Some(2)).unwrap();

    // An error at any other step is reported the same way, and nothing is half-done.
    for op in [SimOp::SyncFile, SimOp::Rename] {
        storage.inject_error(op, "", io::ErrorKind::Other);
        assert!(matches!(
            spool.push(&file(20, 10), Some(3)),
            Err(SpoolError::Io(_))
        ));
        assert!(names(&storage, TMP).is_empty());
        assert_eq!(spool.stats().ready_files, 2);
    }
}

#[test]
fn quarantine_keeps_the_file_and_its_reason_and_requeue_brings_it_back() {
    let storage = SimStorage::new(6);
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    spool.push(&file(0, 10), Some(10)).unwrap();
    spool.push(&file(10, 10), Some(20)).unwrap();
    let bad = spool.take_oldest().unwrap();
    spool
        .quarantine(&bad, "the server rejected it: HTTP 400 EntityTooLarge")
        .unwrap();
    let quarantined = spool.quarantined().unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].name, bad.name);
    assert!(quarantined[0].reason.contains("EntityTooLarge"));
    assert_eq!(spool.take_oldest().unwrap().seq, 1, "the queue goes on");

    assert!(matches!(
        spool.requeue(Some("nope.pq")),
        Err(SpoolError::NotQuarantined(_))
    ));
    let requeued = spool.requeue(None).unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].seq, 2, "requeued as the newest file");
    assert_eq!(requeued[0].position, Some(10), "with its position");
    assert!(
        names(&storage, QUARANTINE).is_empty(),
        "file and reason left quarantine"
    );
    assert_eq!(storage.read(&requeued[0].path()).unwrap(), file(0, 10));
    drop(spool);
    let spool = Spool::open(storage, SpoolConfig::default()).unwrap();
    assert_eq!(spool.entries().count(), 2);
}

#[test]
fn unknown_files_in_ready_are_quarantined_at_open_not_deleted() {
    let storage = SimStorage::new(7);
    drop(Spool::open(storage.clone(), SpoolConfig::default()).unwrap());
    storage.write("ready/copied-by-hand.parquet", b"x").unwrap();
    let spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert!(spool.is_empty());
    let q = spool.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].name, "copied-by-hand.parquet");
    assert!(q[0].reason.contains("unexpected name"), "{}", q[0].reason);
}

#[test]
fn a_stray_highest_numbered_file_neither_wraps_the_numbers_nor_hides_a_file() {
    let storage = SimStorage::new(8);
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    for i in 0..9 {
        spool
            .push(&file(i * 10, 10), Some(i as u64 * 10 + 10))
            .unwrap();
    }
    drop(spool);
    // A copy of a spooled file under the highest name a u64 can spell, one under a
    // number already taken, and one spelled differently from the spool's names.
    let copy = file(0, 10);
    for stray in [
        "ffffffffffffffff.pq",
        "00000003-00000000000000ff.pq",
        "0000000000000004.pq",
    ] {
        storage.write(&format!("{READY}/{stray}"), &copy).unwrap();
    }
    let before: Vec<String> = foreign_entries(&storage)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(
        before.len(),
        3,
        "reported before the spool opens: {before:?}"
    );
    assert_eq!(ready_files(&storage).unwrap().len(), 9);

    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    let waiting: Vec<u64> = spool.entries().map(|e| e.seq).collect();
    assert_eq!(
        waiting,
        (0..9).collect::<Vec<_>>(),
        "all nine files wait, in order"
    );
    let q = spool.quarantined().unwrap();
    assert_eq!(q.len(), 3, "{q:?}");
    let reason = |name: &str| q.iter().find(|f| f.name == name).unwrap().reason.clone();
    assert!(
        reason("foreign-ffffffffffffffff.pq").contains("beyond"),
        "{q:?}"
    );
    assert!(
        reason("foreign-00000003-00000000000000ff.pq").contains("also the number of"),
        "{q:?}"
    );
    assert!(
        reason("foreign-0000000000000004.pq").contains("not spelled"),
        "{q:?}"
    );
    assert_eq!(
        spool.position(),
        Some(90),
        "a foreign name sets no position"
    );
    let next = spool.push(&file(90, 10), Some(100)).unwrap();
    assert_eq!(next.seq, 9, "numbering goes on after the spool's own files");

    // Requeue hands out new, unused numbers, also after a reopen.
    let requeued = spool.requeue(None).unwrap();
    let mut seqs: Vec<u64> = requeued.iter().map(|e| e.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [10, 11, 12]);
    drop(spool);
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert!(spool.quarantined().unwrap().is_empty());
    let mut uploaded = Vec::new();
    while let Some(entry) = spool.take_oldest() {
        uploaded.push(entry.name.clone());
        spool.complete(&entry).unwrap();
    }
    let mut distinct = uploaded.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(uploaded.len(), 13, "{uploaded:?}");
    assert_eq!(distinct.len(), 13, "{uploaded:?}");
    // The requeued foreign copies carry no position (theirs is not trusted): the
    // marker in state/ is file 9 with position 100, and a new file is numbered above
    // it (numbers of files already gone may come back; live ones never).
    drop(spool);
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert_eq!(spool.position(), Some(100));
    assert_eq!(spool.push(&file(100, 10), Some(110)).unwrap().seq, 10);
}

#[test]
fn the_highest_sequence_number_is_an_error_not_a_wrap() {
    let storage = SimStorage::new(9);
    drop(Spool::open(storage.clone(), SpoolConfig::default()).unwrap());
    storage
        .write(
            &format!("{READY}/{}", entry_name(MAX_SEQ, None)),
            &file(0, 5),
        )
        .unwrap();
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert_eq!(spool.entries().count(), 1);
    let err = spool.push(&file(5, 5), None).unwrap_err();
    assert!(matches!(err, SpoolError::SequenceExhausted), "{err}");
    assert!(err.to_string().contains("move it out"), "{err}");
    assert_eq!(spool.entries().count(), 1, "nothing was added");
    // One above the highest is a foreign name.
    storage
        .write(
            &format!("{READY}/{}", entry_name(MAX_SEQ + 1, None)),
            &file(0, 5),
        )
        .unwrap();
    drop(spool);
    let spool = Spool::open(storage, SpoolConfig::default()).unwrap();
    assert_eq!(spool.quarantined().unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn directories_and_symlinks_in_ready_are_quarantined_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StdStorage::new(dir.path());
    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    let first = spool.push(&file(0, 10), Some(10)).unwrap();
    spool.push(&file(10, 10), Some(20)).unwrap();
    drop(spool);
    let ready = dir.path().join(READY);
    std::os::unix::fs::symlink(ready.join(&first.name), ready.join("00000005.pq")).unwrap();
    std::fs::create_dir(ready.join("00000006.pq")).unwrap();
    let foreign = foreign_entries(&storage).unwrap();
    assert_eq!(foreign.len(), 2, "{foreign:?}");
    assert!(
        foreign.iter().any(|f| f.reason.contains("a symlink")),
        "{foreign:?}"
    );
    assert!(
        foreign.iter().any(|f| f.reason.contains("a directory")),
        "{foreign:?}"
    );

    let mut spool = Spool::open(storage.clone(), SpoolConfig::default()).unwrap();
    assert_eq!(spool.entries().count(), 2);
    assert_eq!(spool.stats().quarantined_files, 2);
    let q = spool.quarantined().unwrap();
    let kinds: Vec<_> = q.iter().map(|f| (f.name.as_str(), f.not_a_file)).collect();
    assert_eq!(
        kinds,
        [
            ("foreign-00000005.pq", Some(NotAFile::Symlink)),
            ("foreign-00000006.pq", Some(NotAFile::Dir))
        ]
    );
    assert!(q[0].reason.contains("a symlink in ready/"), "{q:?}");
    assert!(
        std::fs::symlink_metadata(dir.path().join(QUARANTINE).join("foreign-00000005.pq"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link itself moved"
    );
    assert!(foreign_entries(&storage).unwrap().is_empty());
    let err = spool.requeue(Some("foreign-00000006.pq")).unwrap_err();
    assert!(matches!(err, SpoolError::NotAFile { .. }), "{err}");
    assert!(
        spool.requeue(None).unwrap().is_empty(),
        "only files requeue"
    );
    // The next push does not take a number the links or directories looked like.
    assert_eq!(spool.push(&file(20, 10), Some(30)).unwrap().seq, 2);
    drop(spool);
    let spool = Spool::open(storage, SpoolConfig::default()).unwrap();
    assert_eq!(spool.stats().quarantined_files, 2, "counted after reopen");
}

#[test]
fn truncated_garbage_and_tampered_files_are_recognised() {
    let good = file(0, 20);
    let facts = verify_rows(&good).unwrap();
    assert_eq!(facts.rows, 20);
    assert_eq!(facts.device_id, "gw-1");
    assert!(
        facts
            .object_key
            .starts_with("raw/device_id=gw-1/dt=2024-03-01/hour=08/")
    );
    assert_eq!(read_facts(&good).unwrap(), facts);

    let truncated = &good[..good.len() - 10];
    let why = read_facts(truncated).unwrap_err();
    assert!(why.contains("not a readable Parquet file"), "{why}");
    let why = read_facts(b"timestamp,t,h\n1,2,3\n").unwrap_err();
    assert!(why.contains("not a readable Parquet file"), "{why}");
    let mut longer = good.clone();
    longer.extend_from_slice(b"junk");
    assert!(read_facts(&longer).is_err());

    // Another batch's rows under this batch's key: the footer reads, the rows do not match.
    let other = file(1, 20);
    let other_key = read_facts(&other).unwrap().object_key;
    assert_ne!(other_key, facts.object_key);
    let schema =
        Arc::new(Schema::new(vec![Channel::f32("t"), Channel::f32("h").nullable()]).unwrap());
    let data: Vec<(i64, Vec<Value>)> = (0..20)
        .map(|i| {
            (
                T0 + i * 1_000_000,
                vec![Value::F32(i as f32 + 0.5), Value::Null],
            )
        })
        .collect();
    let batch =
        Batch::from_rows(schema.clone(), data.iter().map(|(t, v)| (*t, v.as_slice()))).unwrap();
    let device = DeviceId::new("gw-1").unwrap();
    let tampered = Encoder::new(schema, EncodeOptions::default())
        .unwrap()
        .encode_to_vec(
            &batch,
            &FileMetadata {
                device_id: &device,
                object_key: &facts.object_key,
            },
        )
        .unwrap();
    assert!(read_facts(&tampered).is_ok());
    let why = verify_rows(&tampered).unwrap_err();
    assert!(why.contains("do not match the object key"), "{why}");
}
