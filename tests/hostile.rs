//! Hostile input: feeds that redirect inward, expand entities, decompress
//! into gigabytes, never end or hold 100,000 items, and CSV files in broken
//! encodings. Each gets a clear error (or a bounded read) and no panic.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Workspace, base_config, file_mail, show, stdout};

/// A configuration whose only source is the feed at `url`, with `extra` source keys.
fn feed_only(url: &str, extra: &str) -> String {
    base_config(&file_mail()).replace(
        "[[sources]]\nname = \"desk\"\ntype = \"folder\"\npath = \"articles\"\n",
        // The items link to pages that do not exist: no picture is looked for.
        &format!("[[sources]]\nname = \"desk\"\ntype = \"feed\"\nurl = \"{url}\"\npage_images = false\n{extra}\n"),
    )
}

fn rss_items(n: usize) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>");
    for i in 0..n {
        out.push_str(&format!(
            "<item><guid>g{i}</guid><title>Item number {i}</title><link>https://feeds.example.org/{i}</link>\
             <description>The body of item {i}, long enough to read.</description></item>"
        ));
    }
    out.push_str("</channel></rss>");
    out
}

async fn ingest(ws: &Workspace) -> std::process::Output {
    tokio::process::Command::from(ws.command(&["ingest"]))
        .output()
        .await
        .unwrap()
}

async fn article_count(ws: &Workspace) -> i64 {
    let store = ws.store().await;
    store.article_count().await.unwrap()
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_refused_unless_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/feed"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/real", server.uri())))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/metadata"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "http://169.254.169.254/latest/meta-data/"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/real"))
        .respond_with(ResponseTemplate::new(200).set_body_string(rss_items(2)))
        .mount(&server)
        .await;

    let ws = Workspace::new(&feed_only(&format!("{}/feed", server.uri()), ""));
    let out = ingest(&ws).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = show(&out);
    assert!(
        text.contains(&format!("redirects to {}/real, an internal address", server.uri()))
            && text.contains("allow_private_redirects = true"),
        "{text}"
    );
    assert_eq!(article_count(&ws).await, 0);

    let ws = Workspace::new(&feed_only(&format!("{}/metadata", server.uri()), ""));
    let out = ingest(&ws).await;
    assert!(
        show(&out).contains("redirects to http://169.254.169.254/latest/meta-data/, an internal address"),
        "{}",
        show(&out)
    );

    let ws = Workspace::new(&feed_only(
        &format!("{}/feed", server.uri()),
        "allow_private_redirects = true",
    ));
    let out = ingest(&ws).await;
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(article_count(&ws).await, 2);
}

#[tokio::test]
async fn entity_definitions_are_not_expanded() {
    // The "billion laughs": ten levels of ten references each.
    let mut doctype = String::from("<!DOCTYPE rss [<!ENTITY l0 \"ha\">");
    for level in 1..10 {
        let refs: String = (0..10).map(|_| format!("&l{};", level - 1)).collect();
        doctype.push_str(&format!("<!ENTITY l{level} \"{refs}\">"));
    }
    doctype.push_str("<!ENTITY file SYSTEM \"file:///etc/passwd\">]>");
    let body = format!(
        "<?xml version=\"1.0\"?>{doctype}<rss version=\"2.0\"><channel><title>Wire</title>\
         <item><guid>laugh</guid><title>Laughs &l9;</title><link>https://feeds.example.org/laugh</link>\
         <description>Read &file; here and more words to make a paragraph.</description></item></channel></rss>"
    );
    let url = url::Url::parse("https://feeds.example.org/feed.xml").unwrap();
    let limits = herald::source::feed::Limits {
        timeout: Duration::from_secs(5),
        max_bytes: 1 << 20,
        max_items: 100,
        trust_ids: true,
        allow_private_redirects: false,
    };
    let started = Instant::now();
    let polled = herald::source::feed::parse("desk", &url, body.as_bytes(), &limits, chrono::Utc::now());
    assert!(started.elapsed() < Duration::from_secs(5), "no exponential work");
    // Herald reads the item and leaves the references as they are: nothing
    // grows and nothing is read from disk.
    let polled = polled.expect("a feed with a DOCTYPE is still read");
    assert_eq!(polled.articles.len(), 1, "{:?}", polled.skipped);
    let a = &polled.articles[0];
    let text = format!("{} {} {}", a.title, a.excerpt, a.content_html);
    assert!(text.len() < 10_000, "an entity was expanded: {} bytes", text.len());
    assert!(!text.contains("root:"), "an external entity was read");
    assert!(!text.contains("hahaha"), "no entity was expanded: {text}");
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_byte_cap() {
    // 200 MB of spaces inside an RSS document, about 200 KB compressed.
    let script = "printf '<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>' ; \
                  head -c 200000000 /dev/zero | tr '\\0' ' ' ; printf '</title></channel></rss>'";
    let gz = std::process::Command::new("sh")
        .args(["-c", &format!("({script}) | gzip -1 -c")])
        .output()
        .unwrap()
        .stdout;
    assert!(gz.len() < 2_000_000, "{} bytes compressed", gz.len());
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bomb"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-encoding", "gzip")
                .insert_header("content-type", "application/rss+xml")
                .set_body_bytes(gz),
        )
        .mount(&server)
        .await;
    let ws = Workspace::new(&feed_only(&format!("{}/bomb", server.uri()), "max_bytes = 5000000"));
    let started = Instant::now();
    let out = ingest(&ws).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stdout(&out).contains("is larger than max_bytes (5000000 bytes)"),
        "{}",
        show(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A raw HTTP server that sends a valid start of a feed and then keeps
/// sending (`fast`) or trickles a byte a second, never finishing.
fn endless_server(fast: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nTransfer-Encoding: chunked\r\n\r\n";
                let chunk = |stream: &mut std::net::TcpStream, data: &str| {
                    stream
                        .write_all(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes())
                        .is_ok()
                };
                if stream.write_all(head.as_bytes()).is_err()
                    || !chunk(&mut stream, "<rss version=\"2.0\"><channel><title>")
                {
                    return;
                }
                let filler = "endless ".repeat(8192);
                loop {
                    let ok = if fast {
                        chunk(&mut stream, &filler)
                    } else {
                        chunk(&mut stream, " ")
                    };
                    if !ok {
                        return;
                    }
                    if !fast {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_feed_that_never_ends_is_cut_off_by_the_byte_cap_or_the_timeout() {
    let fast = endless_server(true);
    let ws = Workspace::new(&feed_only(
        &format!("http://127.0.0.1:{fast}/feed"),
        "max_bytes = 2000000\ntimeout_secs = 20",
    ));
    let out = ingest(&ws).await;
    assert!(
        stdout(&out).contains("is larger than max_bytes (2000000 bytes)"),
        "{}",
        show(&out)
    );

    let slow = endless_server(false);
    let ws = Workspace::new(&feed_only(&format!("http://127.0.0.1:{slow}/feed"), "timeout_secs = 2"));
    let started = Instant::now();
    let out = ingest(&ws).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(
        stdout(&out).contains(&format!("fetching http://127.0.0.1:{slow}/feed failed")),
        "{}",
        show(&out)
    );
}

#[tokio::test]
async fn a_feed_of_100000_items_is_read_up_to_max_items_and_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/huge"))
        .respond_with(ResponseTemplate::new(200).set_body_string(rss_items(100_000)))
        .mount(&server)
        .await;
    let ws = Workspace::new(&feed_only(&format!("{}/huge", server.uri()), "max_bytes = 67108864"));
    let out = ingest(&ws).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stdout(&out).contains("100000 items; read the first 1000 (the source's max_items)"),
        "{}",
        show(&out)
    );
    assert_eq!(article_count(&ws).await, 1000);
}

#[test]
fn a_csv_in_a_broken_encoding_reports_each_bad_row_and_imports_the_rest() {
    let ws = Workspace::new(&base_config(&file_mail()));
    // A BOM, a Latin-1 row, a row with a NUL, CRLF line ends, a quote left open at the end.
    let mut csv = b"\xEF\xBB\xBFemail,name\r\nana@example.org,Ana\r\n".to_vec();
    csv.extend_from_slice(b"jose@example.org,Jos\xE9\r\n");
    csv.extend_from_slice(b"nul@example.org,Nu\0l\r\n");
    csv.extend_from_slice(b"bea@example.org,Bea\r\n");
    csv.extend_from_slice(b"open@example.org,\"Open quote\r\n");
    std::fs::write(ws.path().join("broken.csv"), &csv).unwrap();
    let out = ws.herald(&["subscribers", "import", "broken.csv"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let text = show(&out);
    assert!(text.contains("line 3: not valid UTF-8"), "{text}");
    let list = stdout(&ws.herald(&["subscribers", "list"]));
    assert!(
        list.contains("ana@example.org") && list.contains("bea@example.org"),
        "{list}"
    );
    assert!(!list.contains("jose@example.org"), "{list}");

    // UTF-16 (as some spreadsheets save): no email column can be found; refused as a whole.
    let utf16: Vec<u8> = "\u{feff}email,name\nann@example.org,Ann\n"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    std::fs::write(ws.path().join("utf16.csv"), utf16).unwrap();
    let out = ws.herald(&["subscribers", "import", "utf16.csv"]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        show(&out).contains("no `email` column in its header row (is it saved as UTF-8"),
        "{}",
        show(&out)
    );
}
