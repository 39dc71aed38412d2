//! The store misbehaving: the SQLite file locked by another process, the
//! disk full. Each ends in a clear error and nothing sent is lost or sent
//! again once the store is usable.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    KillOnDrop, SQLITE_STORE, SmtpSink, Workspace, article_txt, base_config, show, smtp_mail, state_count, stdout,
};

/// Another process holding an exclusive lock on the SQLite file for `secs`.
fn lock_sqlite(file: &std::path::Path, secs: u32) -> KillOnDrop {
    let script = format!(
        "import sqlite3, sys, time\n\
         db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         db.execute('BEGIN EXCLUSIVE')\n\
         print('locked', flush=True)\n\
         time.sleep({secs})\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script, &file.display().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    KillOnDrop(child)
}

#[test]
fn a_sqlite_file_locked_by_another_process_is_waited_for_then_refused_clearly() {
    let sink = SmtpSink::start(&[]);
    let ws = Workspace::sqlite(&base_config(&smtp_mail(sink.port, "")));
    ws.subscribers(5);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    let db = ws.path().join("data/herald.db");
    assert!(db.exists());

    // A short lock is waited out.
    let lock = lock_sqlite(&db, 2);
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("5 sent"), "{}", show(&out));
    drop(lock);

    // A lock held past the busy timeout (10 s) is an error that says so; nothing is half-done.
    ws.write("articles/bridge.txt", &article_txt("Bridge opens", "bridge"));
    let lock = lock_sqlite(&db, 60);
    let started = Instant::now();
    let out = ws.herald(&["digest", "daily"]);
    assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());
    assert!(!out.status.success(), "{}", show(&out));
    assert!(show(&out).contains("database is locked"), "{}", show(&out));
    drop(lock);
    assert_eq!(
        sink.recipients_at_least(5).len(),
        5,
        "nothing went out while the store was locked"
    );

    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("5 sent"), "{}", show(&out));
    let rows = stdout(&ws.herald(&["deliveries"]));
    assert_eq!(state_count(&rows, "sent"), (10, 0), "{rows}");
    assert_eq!(sink.recipients_at_least(10).len(), 10);
}

/// A 16 MiB tmpfs, or `None` where this machine cannot mount one (not root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_fails_the_run_clearly_and_loses_nothing_once_space_is_back() {
    let Some(disk) = SmallDisk::mount() else {
        panic!("mounting a small tmpfs needs root (scripts/test runs as root in CI)");
    };
    let sink = SmtpSink::start(&[]);
    let store = format!("url = \"sqlite://{}/herald.db\"", disk.dir.path().display());
    let ws = Workspace::sqlite(&base_config(&smtp_mail(sink.port, "")).replace(SQLITE_STORE, &store));
    ws.subscribers(200);
    ws.write("articles/ferry.txt", &article_txt("Ferry returns", "ferry"));
    // Fill the disk: a reserve of 384 KiB, then everything else.
    let reserve = disk.dir.path().join("reserve");
    std::fs::write(&reserve, vec![0u8; 384 * 1024]).unwrap();
    let filler = disk.dir.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=4k"])
        .stderr(Stdio::null())
        .status();
    // Articles with long bodies, so the edition does not fit in the reserve.
    for i in 0..20 {
        ws.write(
            &format!("articles/long-{i}.txt"),
            &format!(
                "Long story {i}\n\n{}\n",
                "A paragraph of the long story goes on and on. ".repeat(400)
            ),
        );
    }
    let full = |out: &std::process::Output| {
        let text = show(out);
        assert!(!out.status.success(), "{text}");
        assert!(
            ["database or disk is full", "disk I/O error", "No space left"]
                .iter()
                .any(|words| text.contains(words)),
            "{text}"
        );
    };
    // No space at all: the store cannot even be opened, and says so at once.
    let started = Instant::now();
    full(&ws.herald(&["digest", "daily"]));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    // A little space: the run fails part-way.
    std::fs::remove_file(&reserve).unwrap();
    full(&ws.herald(&["digest", "daily"]));
    assert!(
        sink.recipients().is_empty(),
        "nothing is sent without its record: {:?}",
        sink.recipients()
    );

    std::fs::remove_file(&filler).unwrap();
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("200 sent"), "{}", show(&out));
    sink.assert_one_copy_each(200);
}
