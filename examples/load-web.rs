//! An open-loop load generator for Herald's web interface: requests go out
//! at a fixed total rate whatever the answers' speed, and each one's latency
//! counts from when it was due, so a slow server cannot hide its queue
//! (no coordinated omission).
//!
//!   load-web RATE SECONDS WORKERS GETS POSTS
//!
//! GETS and POSTS are files of URLs, one a line: GET URLs are fetched and
//! POST URLs sent the RFC 8058 one-click body, three GETs to one POST (all
//! GETs when POSTS is `-`). Each
//! request names a client address in `X-Forwarded-For` (one of 256), as
//! readers behind a proxy would. Prints `name value unit` lines: requests,
//! errors (any transport error or status other than 200 and 304), achieved
//! rate, and latency p50, p99 and max.

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, rate, seconds, workers, gets, posts] = args.as_slice() else {
        eprintln!("usage: load-web RATE SECONDS WORKERS GETS POSTS");
        std::process::exit(2);
    };
    let rate: f64 = rate.parse().expect("RATE is a number");
    let seconds: f64 = seconds.parse().expect("SECONDS is a number");
    let workers: usize = workers.parse().expect("WORKERS is a number");
    let read = |path: &str| -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("a URL file")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    let posts = if posts == "-" { Vec::new() } else { read(posts) };
    let gets = read(gets);
    herald::install_crypto();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (mut latencies, errors, sent, elapsed) = runtime.block_on(run(rate, seconds, workers, gets, posts));
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!("requests {sent} requests");
    println!("errors {errors} requests");
    println!("achieved_rate {:.0} requests/s", sent as f64 / elapsed.as_secs_f64());
    println!("latency_p50 {:.2} ms", quantile(0.50));
    println!("latency_p99 {:.2} ms", quantile(0.99));
    println!(
        "latency_max {:.2} ms",
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
}

async fn run(
    rate: f64,
    seconds: f64,
    workers: usize,
    gets: Vec<String>,
    posts: Vec<String>,
) -> (Vec<Duration>, usize, usize, Duration) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(workers)
        .build()
        .expect("a client");
    let interval = Duration::from_secs_f64(workers as f64 / rate);
    let per_worker = (seconds * rate / workers as f64).round() as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (client, gets, posts) = (client.clone(), gets.clone(), posts.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker);
                let mut errors = 0;
                // Workers are spread evenly over one interval.
                let offset = interval.mul_f64(w as f64 / workers as f64);
                for k in 0..per_worker {
                    let due = start + offset + interval * k as u32;
                    tokio::time::sleep_until(due.into()).await;
                    let n = w + k * workers;
                    let forwarded = format!("10.0.{}.{}", n % 256, (n / 256) % 250 + 1);
                    let request = if n % 4 == 3 && !posts.is_empty() {
                        client
                            .post(&posts[n / 4 % posts.len()])
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body("List-Unsubscribe=One-Click")
                    } else {
                        client.get(&gets[n % gets.len()])
                    };
                    let answer = request.header("x-forwarded-for", forwarded).send().await;
                    let ok = match answer {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            response.bytes().await.is_ok() && (status == 200 || status == 304)
                        }
                        Err(_) => false,
                    };
                    latencies.push(due.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.expect("a worker");
        all.extend(latencies);
        errors += e;
    }
    let sent = all.len();
    (all, errors, sent, start.elapsed())
}
