#!/usr/bin/env bash
# The main job on the embedded default, end to end and offline: generate Cowrie logs, load them
# into SQLite, enrich sessions, files and IPs against local simulators of MaxMind, Team Cymru,
# GreyNoise and VirusTotal (no network), then write the HTML report and print the summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${DEMO_DIR:-demo}
db="sqlite:$out/cowrie.sqlite"
mkdir -p "$out"

./bin/cowrie-sim logs --out "$out/logs" --sessions 5000 --ips 1500 --sensors 3 --days 3 --seed 1 --faults
./bin/cowrie-loader bulk "$out/logs" --db "$db" --status-dir "$out/status"
./bin/cowrie-sim mmdb --out "$out/maxmind" --seed 1

./bin/cowrie-sim cymru --port 0 --seed 1 --latency-ms 150 >"$out/cymru.log" 2>&1 &
cymru=$!
./bin/cowrie-sim greynoise --port 0 --seed 1 --rate 1000 >"$out/greynoise.log" 2>&1 &
greynoise=$!
./bin/cowrie-sim virustotal --port 0 --seed 1 --rate 0 --daily-quota 0 >"$out/virustotal.log" 2>&1 &
virustotal=$!
trap 'kill $cymru $greynoise $virustotal 2>/dev/null || true' EXIT
port_of() { for _ in $(seq 50); do p=$(grep -o '127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2); [ -n "$p" ] && { echo "$p"; return; }; sleep 0.1; done; echo "simulator did not start: $1" >&2; exit 1; }
cport=$(port_of "$out/cymru.log")
gport=$(port_of "$out/greynoise.log")
vport=$(port_of "$out/virustotal.log")

GREYNOISE_API_KEY=demo-key VT_API_KEY=demo-key ./bin/cowrie-enrich refresh --sessions all --files all --ips 0 --db "$db" \
  --maxmind-dir "$out/maxmind" --cymru-host 127.0.0.1 --cymru-port "$cport" \
  --greynoise-url "http://127.0.0.1:$gport" --greynoise-rate 1000 \
  --virustotal-url "http://127.0.0.1:$vport" --virustotal-rate 6000 --virustotal-daily-quota 100000 --status-dir "$out/status" --verbose
./bin/cowrie-db info --db "$db"

./bin/cowrie-report summary --format html --out "$out/report.html" --db "$db"
./bin/cowrie-report summary --limit 5 --db "$db"
echo "report: $out/report.html"
