//! `herald subscribers`: add, remove, list and a streamed CSV import that
//! reports invalid rows by line and skips duplicates.

use crate::util::{Workspace, base_config, file_mail, show, stdout};

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
        text.contains("in.csv: 7 row(s), 2 added to readers, 2 duplicate(s) skipped, 3 invalid"),
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
