//! `herald subscribers`: add, remove, list and a streamed CSV import that
//! reports invalid rows by line and skips duplicates.

use crate::support::{Workspace, base_config, file_mail, show, stdout};

#[test]
fn import_reports_invalid_rows_by_line_and_skips_duplicates() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.herald(&["subscribers", "add", "kept@example.org", "--name", "Kept"]);
    let mut csv = b"Email,Name,City,Plan\n\
        ana@example.org,Ana Ruiz,Leeds,gold\n\
        not-an-address,Bad,York,\n\
        KEPT@example.org,Kept Again,Bath,\n\
        ana@example.org,Ana Twice,Leeds,\n\
        ,Nobody,,\n\
        bo@example.net,,Hull,silver\n"
        .to_vec();
    csv.extend_from_slice(b"bad\xffbytes@example.org,Broken,Nowhere,\n");
    std::fs::write(ws.path().join("in.csv"), csv).unwrap();
    let out = ws.herald(&["subscribers", "import", "in.csv"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "invalid rows make the import exit non-zero: {}",
        show(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains("in.csv: 7 row(s), 2 added to readers, 2 duplicate(s) skipped, 0 suppressed skipped, 3 invalid"),
        "{text}"
    );
    assert!(
        text.contains("line 3: \"not-an-address\" is not a valid address"),
        "{text}"
    );
    assert!(text.contains("line 6: the email is empty"), "{text}");
    assert!(text.contains("line 8: not valid UTF-8"), "{text}");

    let list = stdout(&ws.herald(&["subscribers", "list"]));
    assert!(list.contains("list readers: 3 subscriber(s)"), "{list}");
    assert!(
        list.contains("ana@example.org") && list.contains("Ana Ruiz") && list.contains("bo@example.net"),
        "{list}"
    );
}

#[test]
fn a_csv_without_an_email_column_is_refused() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.write("in.csv", "address,name\nana@example.org,Ana\n");
    let out = ws.herald(&["subscribers", "import", "in.csv"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no `email` column"),
        "{}",
        show(&out)
    );
}

#[test]
fn add_remove_and_resubscribe() {
    let ws = Workspace::new(&base_config(&file_mail()));
    assert!(
        stdout(&ws.herald(&["subscribers", "add", "ana@example.org"]))
            .contains("ana@example.org subscribed to readers")
    );
    assert!(stdout(&ws.herald(&["subscribers", "add", "ANA@example.org"])).contains("already subscribed"));
    let bad = ws.herald(&["subscribers", "add", "ana@example"]);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a deliverable address"),
        "{}",
        show(&bad)
    );
    assert!(stdout(&ws.herald(&["subscribers", "remove", "ana@example.org"])).contains("unsubscribed from readers"));
    let again = ws.herald(&["subscribers", "remove", "ana@example.org"]);
    assert_eq!(again.status.code(), Some(1));
    let list = stdout(&ws.herald(&["subscribers", "list", "--status", "unsubscribed"]));
    assert!(
        list.contains("1 subscriber(s) with status unsubscribed") && list.contains("ana@example.org"),
        "{list}"
    );
    assert!(stdout(&ws.herald(&["subscribers", "add", "ana@example.org"])).contains("subscribed to readers again"));
    let wrong = ws.herald(&["subscribers", "list", "--list", "nope"]);
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("no list named \"nope\""),
        "{}",
        show(&wrong)
    );
}

#[test]
fn an_import_brings_status_and_cadence_and_never_reactivates_anyone() {
    let ws = Workspace::new(&(base_config(&file_mail()) + &crate::support::job_toml("weekly", "0 7 * * 1")));
    ws.herald(&["subscribers", "add", "left@example.org"]);
    ws.herald(&["subscribers", "remove", "left@example.org"]);
    ws.herald(&["suppressions", "add", "bounced@example.org", "--reason", "hard bounce"]);
    ws.write(
        "old-provider.csv",
        "email,name,status,cadence,plan\n\
         ana@example.org,Ana,subscribed,weekly,gold\n\
         gone@example.org,Gone,unsubscribed,,\n\
         left@example.org,Left,active,,\n\
         bounced@example.org,Bounced,active,,\n\
         odd@example.org,Odd,maybe,,\n",
    );
    let out = ws.herald(&["subscribers", "import", "old-provider.csv"]);
    let text = stdout(&out);
    assert!(
        text.contains("5 row(s), 2 added to readers, 1 duplicate(s) skipped, 1 suppressed skipped, 1 invalid"),
        "{}",
        show(&out)
    );
    assert!(text.contains("line 6: \"maybe\" is not a status"), "{text}");
    let show_one = |email: &str| stdout(&ws.herald(&["subscribers", "show", email]));
    assert!(show_one("ana@example.org").contains("ana@example.org on readers: active"));
    assert!(show_one("ana@example.org").contains("cadence: weekly"));
    assert!(
        show_one("gone@example.org").contains(": unsubscribed"),
        "history kept, not sent to"
    );
    assert!(
        show_one("left@example.org").contains(": unsubscribed"),
        "never reactivated by an import"
    );
    assert!(show_one("bounced@example.org").contains("is not on readers"));

    // The whole file's default status from the command line.
    ws.write("unsubs.csv", "email\nformer@example.org\n");
    let out = ws.herald(&["subscribers", "import", "unsubs.csv", "--status", "unsubscribed"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(show_one("former@example.org").contains(": unsubscribed"));

    // Export gives back what import reads, attributes as columns.
    let out = ws.herald(&["subscribers", "export", "--status", "active"]);
    assert!(out.status.success(), "{}", show(&out));
    let csv = stdout(&out);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("email,name,list,status,cadence,created_at,plan"));
    let ana = lines.next().unwrap();
    assert!(
        ana.starts_with("ana@example.org,Ana,readers,active,weekly,") && ana.ends_with(",gold"),
        "{ana}"
    );
    assert_eq!(lines.next(), None, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&ws.herald(&["subscribers", "export", "--format", "json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
}

#[test]
fn an_erased_address_leaves_no_personal_data_and_cannot_come_back() {
    let ws = Workspace::new(&base_config(&file_mail()));
    ws.write(
        "in.csv",
        "email,name,city\nerin@example.org,Erin Walsh,Leeds\nkeep@example.org,Keep,York\n",
    );
    ws.herald(&["subscribers", "import", "in.csv"]);
    ws.write(
        "articles/ferry.txt",
        &crate::support::article_txt("Ferry returns", "ferry"),
    );
    assert!(ws.herald(&["digest", "daily"]).status.success());

    let out = ws.herald(&["subscribers", "erase", "Erin@example.org"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(stdout(&out).contains("1 subscription(s) scrubbed"), "{}", stdout(&out));

    // Nothing of Erin is left in a SQLite store's files, not even in freed pages.
    for file in ["data/herald.db", "data/herald.db-wal"] {
        let bytes = std::fs::read(ws.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(
            !text.contains("erin@example.org") && !text.contains("erin walsh"),
            "personal data left in {file}"
        );
    }
    let listed = stdout(&ws.herald(&["subscribers", "list"]));
    assert!(!listed.contains("erin@"), "{listed}");
    assert!(listed.contains("erased"), "{listed}");
    let suppressions = stdout(&ws.herald(&["suppressions", "list"]));
    assert!(suppressions.contains("(erased) sha256:"), "{suppressions}");

    // Neither an import nor an operator's add brings the address back.
    let again = stdout(&ws.herald(&["subscribers", "import", "in.csv"]));
    assert!(again.contains("1 suppressed skipped"), "{again}");
    let add = ws.herald(&["subscribers", "add", "erin@example.org"]);
    assert_eq!(add.status.code(), Some(1), "{}", show(&add));
    let remove = ws.herald(&["suppressions", "remove", "erin@example.org"]);
    assert_eq!(remove.status.code(), Some(1));
    assert!(show(&remove).contains("erased on request: it stays suppressed"));

    // An operator's suppressions: import, list, remove.
    ws.write("blocked.txt", "a@example.org\nb@example.org\nnot-an-address\n");
    let out = ws.herald(&["suppressions", "import", "blocked.txt", "--reason", "old provider"]);
    assert_eq!(out.status.code(), Some(1), "one invalid line: {}", show(&out));
    assert!(
        stdout(&out).contains("2 address(es) suppressed, 1 invalid"),
        "{}",
        show(&out)
    );
    assert!(ws.herald(&["suppressions", "remove", "a@example.org"]).status.success());
    let listed = stdout(&ws.herald(&["suppressions", "list"]));
    assert!(
        listed.contains("b@example.org") && !listed.contains("a@example.org"),
        "{listed}"
    );
}
