//! A real browser (headless Debian Chromium through chromedriver) signs up on
//! the form, follows the confirmation mail captured by Postfix's smtp-sink,
//! confirms with the button, then leaves from a digest's unsubscribe link.
//! Screenshots of every page are saved under `target/test-artifacts/browser/`,
//! and of the default digest, with pictures, at phone and desktop width in
//! light and dark mode.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;

use crate::support::webdriver::Browser;
use crate::support::{KillOnDrop, SmtpSink, Workspace, article_txt, base_config, free_port, show, smtp_mail};

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/browser")
}

fn status(ws: &Workspace, email: &str) -> String {
    ws.on_store(async |store| {
        let row = store.subscriber_by_address("readers", email).await.unwrap();
        row.map(|r| r.status.to_string()).unwrap_or_default()
    })
}

/// Waits for the sink to hold a message whose text contains `needle`; returns its text part.
fn wait_for_mail(sink: &SmtpSink, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for raw in sink.messages() {
            let Some(message) = MessageParser::default().parse(&raw) else {
                continue;
            };
            let text = message.body_text(0).map(|t| t.to_string()).unwrap_or_default();
            if text.contains(needle) {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no mail containing {needle:?} arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn link_after(text: &str, prefix: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"))
        .to_string()
}

#[test]
fn a_reader_signs_up_confirms_and_leaves_in_a_real_browser() {
    let sink = SmtpSink::start(&[]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/");
    let config = base_config(&smtp_mail(sink.port, ""))
        .replace("https://gazette.example.org/", &base)
        .replace(
            "[[jobs]]",
            "[[jobs]]\nname = \"weekly\"\nkind = \"digest\"\nlist = \"readers\"\nschedule = \"0 7 * * 1\"\ntimezone = \"UTC\"\n\n[[jobs]]",
        )
        + &format!("\n[web]\nlisten = \"127.0.0.1:{port}\"\n");
    let ws = Workspace::new(&config);
    let mut serve = ws.command(&["serve"]);
    serve
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _server = KillOnDrop(serve.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "herald serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path());
    let shots = artifacts();

    // Sign up, at phone size first to see the form there too.
    browser.resize(390, 844);
    browser.open(&format!("{base}subscribe/readers"));
    browser.screenshot(&shots.join("1-subscribe-phone.png"));
    browser.resize(1280, 900);
    browser.screenshot(&shots.join("1-subscribe-desktop.png"));
    browser.type_into("#email", "reader@example.org");
    browser.type_into("#name", "Robin");
    browser.click("input[name=cadence][value=daily]");
    browser.click("button[type=submit]");
    browser.wait_for_text("Check your inbox");
    browser.screenshot(&shots.join("2-check-inbox.png"));
    assert_eq!(status(&ws, "reader@example.org"), "pending");

    // The confirmation mail; its link opens a page, and only the button confirms.
    let mail = wait_for_mail(&sink, "confirm?token=");
    let confirm = link_after(&mail, &format!("{base}confirm?token="));
    browser.open(&confirm);
    browser.wait_for_text("Confirm your subscription");
    browser.screenshot(&shots.join("3-confirm.png"));
    assert_eq!(
        status(&ws, "reader@example.org"),
        "pending",
        "opening the link changed nothing"
    );
    browser.click("button[type=submit]");
    browser.wait_for_text("You are subscribed");
    browser.screenshot(&shots.join("4-confirmed.png"));
    assert_eq!(status(&ws, "reader@example.org"), "active");

    // A digest arrives (the daily one, as chosen); its footer links lead to preferences and unsubscribe.
    ws.write("articles/pier.txt", &article_txt("Pier lights restored", "pier"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let digest = wait_for_mail(&sink, "Pier lights restored");
    browser.open(&link_after(&digest, &format!("{base}preferences?token=")));
    browser.wait_for_text("Your preferences");
    browser.screenshot(&shots.join("5-preferences.png"));
    browser.open(&link_after(&digest, &format!("{base}unsubscribe?token=")));
    browser.wait_for_text("Unsubscribe from Gazette Daily?");
    browser.screenshot(&shots.join("6-unsubscribe.png"));
    assert_eq!(status(&ws, "reader@example.org"), "active");
    // The button's POST, as Chromium itself encodes a multipart/form-data
    // form (its own mixed-case WebKitFormBoundary), as a mail client's
    // one-click may: the body the server reads is the browser's.
    let enctype = browser.eval(
        "const f = document.querySelector('form[method=post]'); \
         f.enctype = 'multipart/form-data'; return f.enctype;",
    );
    assert_eq!(enctype, "multipart/form-data");
    browser.click("button[type=submit]");
    browser.wait_for_text("You are unsubscribed");
    assert!(browser.current_url().contains("unsubscribe?token="), "no redirect");
    browser.screenshot(&shots.join("7-unsubscribed.png"));
    assert_eq!(status(&ws, "reader@example.org"), "unsubscribed");
}

/// Pictures for the digest's stories, drawn as SVG, so the browser shows
/// them without a network.
fn picture(colour: &str, label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"480\" height=\"320\"><rect width=\"480\" height=\"320\" fill=\"{colour}\"/>\
         <circle cx=\"360\" cy=\"90\" r=\"48\" fill=\"#f7e7a1\"/><text x=\"32\" y=\"280\" font-size=\"48\" fill=\"white\" font-family=\"sans-serif\">{label}</text></svg>"
    )
}

#[test]
fn the_digest_renders_with_pictures_on_phone_and_desktop_in_light_and_dark() {
    let (_, html, _) = crate::render::render_for_ana("", &crate::render::stories_with_pictures());
    let shots = artifacts().join("digest");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("ferry.svg"), picture("#2b6a8f", "ferry")).unwrap();
    std::fs::write(shots.join("orchid.svg"), picture("#4f7a3a", "orchid")).unwrap();
    // The pictures' https host stands for this folder, as a mail client's
    // image proxy would.
    let page = shots.join("digest.html");
    std::fs::write(
        &page,
        html.replace(
            "https://images.gazette.example.org/",
            &format!("file://{}/", shots.display()),
        ),
    )
    .unwrap();

    let profile = tempfile::tempdir().unwrap();
    let browser = Browser::start(profile.path());
    for (dark, scheme) in [(false, "light"), (true, "dark")] {
        browser.color_scheme(dark);
        for (width, height, device) in [(390, 844, "phone"), (1280, 900, "desktop")] {
            browser.resize(width, height);
            browser.open(&format!("file://{}", page.display()));
            browser.wait_for_text("Harbour ferry returns");
            let shown = browser.eval(
                "return Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.getBoundingClientRect().width]);",
            );
            let shown = shown.as_array().unwrap();
            assert_eq!(shown.len(), 2, "{shown:?}");
            for image in shown {
                assert_eq!(image[0], true, "every picture loaded: {shown:?}");
                let expected = if device == "phone" { 96.0 } else { 160.0 };
                assert_eq!(image[1].as_f64(), Some(expected), "{device}: {shown:?}");
            }
            let page_width = browser
                .eval("return document.documentElement.scrollWidth;")
                .as_f64()
                .unwrap();
            assert!(
                page_width <= f64::from(width),
                "{device}: nothing wider than the screen ({page_width})"
            );
            let background = browser
                .eval("return getComputedStyle(document.querySelector('.column')).backgroundColor;")
                .as_str()
                .unwrap()
                .to_string();
            let expected = if dark { "rgb(30, 30, 30)" } else { "rgb(255, 253, 248)" };
            assert_eq!(background, expected, "{scheme} {device}");
            // The whole digest in one picture: the window as tall as the page.
            let page_height = browser
                .eval("return document.documentElement.scrollHeight;")
                .as_f64()
                .unwrap();
            browser.resize(width, page_height as u32 + 160);
            browser.screenshot(&shots.join(format!("digest-{device}-{scheme}.png")));
        }
    }
}
