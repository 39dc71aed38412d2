# Shared by scripts/bench-send and scripts/bench-scale: a release build, a
# counting smtp-sink on a free port, a workspace with ten articles, and
# measuring a command's wall time and peak RSS (from /usr/bin/time -v).
# Every figure is printed as one line: `name value unit`.

export PATH="$PATH:/usr/sbin"
for tool in smtp-sink smtp-source /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench: needs $tool (Postfix's smtp-sink and smtp-source, and GNU time: apt-get install postfix time)" >&2; exit 1; }
done
cargo build --release --quiet --bin herald --example stock-lettre-send
# HERALD=path measures another build (e.g. an earlier commit's) the same way.
herald="${HERALD:-$PWD/target/release/herald}"
stock="$PWD/target/release/examples/stock-lettre-send"
templates="$PWD/templates"

work=$(mktemp -d)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
smtp-sink "${user[@]}" -c 127.0.0.1:"$port" 1024 >/dev/null 2>&1 &
sink_pid=$!
sleep 0.3

figure() { printf '%s %s %s\n' "$1" "$2" "$3"; }

# measure NAME CMD...: runs CMD (stdout to $work/NAME.out), sets $secs and $rss_mib.
measure() {
    local name=$1; shift
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -v "$@" > "$work/$name.out" 2> "$work/$name.time" || { cat "$work/$name.out" "$work/$name.time" >&2; echo "bench: $name failed" >&2; exit 1; }
    end=$(date +%s.%N)
    secs=$(python3 -c "print(f'{$end - $start:.3f}')")
    rss_mib=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$work/$name.time")
}

rate() { python3 -c "print(f'{$1 / $2:.0f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# A workspace with ten articles.
cp -r "$templates" "$work/templates"
mkdir -p "$work/config" "$work/articles"
for i in $(seq 1 10); do
    {
        echo "Benchmark story number $i about the town council budget"
        echo
        for p in 1 2 3; do
            echo "Paragraph $p of story $i describes the council budget, the bus routes, the library hours and the new market square plans in enough words to look like real reporting from a local newsroom."
            echo
        done
    } > "$work/articles/story-$i.txt"
done

# subscribers_csv N FILE
subscribers_csv() {
    python3 - "$1" > "$2" <<'PY'
import sys
out = sys.stdout
out.write("email,name,city\n")
for i in range(int(sys.argv[1])):
    out.write(f"reader{i}@example.org,Reader {i},Town {i % 50}\n")
PY
}

# write_config MAX_CONNECTIONS
write_config() {
    cat > "$work/config/herald.toml" <<TOML
[site]
name = "Bench Gazette"
base_url = "https://bench.example.org/"
from = "Bench Gazette <news@bench.example.org>"
postal_address = "1 Bench Row, Benchham"
[store]
url = "sqlite://data/herald.db"
[tokens]
secret = "bench-secret"
[mail]
transport = "smtp"
max_connections = $1
send_timeout_secs = 60
[mail.smtp]
host = "127.0.0.1"
port = $port
tls = "none"
[[sources]]
name = "desk"
type = "folder"
path = "articles"
[[lists]]
name = "readers"
[[jobs]]
name = "daily"
kind = "digest"
list = "readers"
schedule = "0 7 * * *"
timezone = "UTC"
max_articles = 10
TOML
}
