"""A day of mixed load, compressed (benches/soak.sh): CLIENTS threads for MINUTES minutes against
one mirato server, each request of a kind drawn at random:

  warm     a dashboard page with its default filters
  cold     a page with a new combination of filters (region, period, gender, age band)
  api      /api/kpi/<id> with a breakdown
  export   a panel's CSV or XLSX
  report   the ANPAL workbook
  cohort   the cohort file (Parquet)

Meanwhile it drops a new event file in the inbox every minute (the server's inbox job takes it)
and samples the server's RSS, open file descriptors and the size of the audit and the views.
Prints one JSON object: per kind the count, errors and p50/p95/p99 in ms; the samples; the
ingested files. Usage: soak.py URL TOKEN PID DATA_DIR INBOX SOURCE_CSV MINUTES CLIENTS
"""
import csv
import io
import json
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request

url, token, pid, data_dir, inbox, source, minutes, clients = sys.argv[1:9]
pid, minutes, clients = int(pid), float(minutes), int(clients)
end = time.time() + minutes * 60

PAGES = ["panoramica", "iscrizione", "orientamento", "patto", "specialistico",
         "accompagnamento", "incontro", "esiti", "scadenze", "qualita"]
KPIS = ["registered_stock", "hires", "applications_received", "placement_rate_180",
        "pacts_signed", "days_to_pact_median"]
REGIONS = ["Lombardia", "Lazio", "Campania", "Sicilia", "Veneto", "Piemonte", "Puglia", "Toscana"]
WEIGHTS = {"warm": 40, "cold": 20, "api": 25, "export": 10, "report": 2, "cohort": 3}


def cold_query():
    y = random.choice([2021, 2022, 2023, 2024, 2025])
    m = random.randint(1, 12)
    q = [f"from={y}-{m:02d}-01", f"to={y}-12-31", f"region={random.choice(REGIONS)}"]
    if random.random() < 0.3:
        q.append("region=" + random.choice(REGIONS))
    return "&".join(q)


def request_for(kind):
    if kind == "warm":
        return f"/p/{random.choice(PAGES)}"
    if kind == "cold":
        return f"/p/{random.choice(PAGES)}?{cold_query()}"
    if kind == "api":
        by = random.choice(["region", "gender", "region,gender"])
        return f"/api/kpi/{random.choice(KPIS)}?from=2024-01-01&to=2024-12-31&by={by}"
    if kind == "export":
        ext = random.choice(["csv", "csv", "xlsx"])
        return f"/export/{random.choice(PAGES)}/1.{ext}?from=2024-01-01&to=2024-12-31"
    if kind == "report":
        return f"/report/anpal?year={random.choice([2023, 2024, 2025])}"
    return f"/export/cohort.parquet?entry=pact&from=2024-01-01&to=2024-06-30&region={random.choice(REGIONS)}"


results = {k: [] for k in WEIGHTS}
errors = {k: [] for k in WEIGHTS}
deferred = {k: 0 for k in WEIGHTS}
lock = threading.Lock()


def client(seed):
    """A browser-like client: a 503 with Retry-After (the server's "still computing, come
    back") is followed after that many seconds, at the address it names, as a page reloads
    itself; the request's time runs from its first try to its answer, and each such turn is
    counted apart. An answer later than 600 s in all is an error of the run."""
    rng = random.Random(seed)
    kinds, weights = zip(*WEIGHTS.items())
    while time.time() < end:
        kind = rng.choices(kinds, weights)[0]
        path = request_for(kind)
        req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
        t0 = time.time()
        turns = 0
        while True:
            status, retry = 0, None
            left = 600 - (time.time() - t0)
            try:
                with urllib.request.urlopen(req, timeout=max(1, left)) as r:
                    r.read()
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
                retry = e.headers.get("Retry-After")
                body = e.read()
                # The retry names the instant the first try computes at (`retry_url` in JSON,
                # `url=` in a page's Refresh), so newer data meanwhile does not start it over.
                again = None
                try:
                    again = json.loads(body).get("retry_url")
                except (ValueError, AttributeError):
                    refresh = e.headers.get("Refresh") or ""
                    if "url=" in refresh:
                        again = refresh.split("url=", 1)[1]
                if again:
                    req = urllib.request.Request(url + again, headers=req.headers)
            except Exception as e:  # connection refused, timeout: an error of the run
                status = f"{type(e).__name__}: {e}"
            if status == 503 and retry and time.time() - t0 + int(retry) < 600:
                turns += 1
                time.sleep(int(retry))
                continue
            break
        ms = (time.time() - t0) * 1000
        with lock:
            deferred[kind] += turns
            # 200; a 400 for a filter combination that a page refuses is the caller's; 5xx not.
            if status == 200:
                results[kind].append(ms)
            else:
                errors[kind].append(f"{status} {path}")


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


samples = []
dropped = []


def server_gauges():
    """The server's own counts from /metrics: computations dropped because nobody waited any
    more, and downloads computing or waiting for their turn."""
    want = {"mirato_computations_abandoned": "abandoned", "mirato_downloads_running": "downloads"}
    out = {}
    try:
        req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            for line in r.read().decode().splitlines():
                name, _, value = line.partition(" ")
                if name in want:
                    out[want[name]] = int(float(value))
    except Exception:  # a busy server's slow /metrics is no error of the run
        pass
    return out


def sampler():
    start = time.time()
    next_drop = start
    # A busy day's file: the source's first SOAK_ROWS rows (default 20,000).
    reader = csv.reader(open(source, newline=""))
    header = next(reader)
    body = [r for _, r in zip(range(int(os.environ.get("SOAK_ROWS", "20000"))), reader)]
    id_col = header.index("event_id")
    n = 0
    while time.time() < end:
        now = time.time()
        if now >= next_drop:
            # A new file every minute: the source's rows under new event ids.
            n += 1
            name = f"soak-{n:04d}.csv"
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(header)
            for r in body:
                r = list(r)
                r[id_col] = f"soak{n}-{r[id_col]}"
                w.writerow(r)
            tmp = os.path.join(inbox, "." + name)
            with open(tmp, "w", newline="") as f:
                f.write(buf.getvalue())
            os.rename(tmp, os.path.join(inbox, name))
            open(os.path.join(inbox, name + ".done"), "w").close()
            dropped.append(name)
            next_drop += 60
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            samples.append({
                "t": round(now - start),
                "rss_mib": round(rss_kib() / 1024),
                "fds": fds,
                "audit_mib": round(du(os.path.join(data_dir, "audit")) / 2**20, 1),
                "views_mib": round(du(os.path.join(data_dir, "views")) / 2**20, 1),
                **server_gauges(),
            })
        except FileNotFoundError:
            samples.append({"t": round(now - start), "server": "gone"})
            return
        time.sleep(10)


threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
threads.append(threading.Thread(target=sampler))
for t in threads:
    t.start()
for t in threads:
    t.join()


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return round(v[min(len(v) - 1, int(len(v) * p))], 1)


kinds = {}
for k in WEIGHTS:
    kinds[k] = {
        "requests": len(results[k]) + len(errors[k]),
        "errors": len(errors[k]),
        "retry_after_turns": deferred[k],
        "p50_ms": pct(results[k], 0.50),
        "p95_ms": pct(results[k], 0.95),
        "p99_ms": pct(results[k], 0.99),
        "first_errors": errors[k][:5],
    }
third = max(1, len(samples) // 3)
live = [s for s in samples if "rss_mib" in s]
print(json.dumps({
    "minutes": minutes,
    "clients": clients,
    "kinds": kinds,
    "errors": sum(len(e) for e in errors.values()),
    "rss_mib": {
        "max_first_third": max((s["rss_mib"] for s in live[:third]), default=None),
        "max_last_third": max((s["rss_mib"] for s in live[-third:]), default=None),
        "max": max((s["rss_mib"] for s in live), default=None),
    },
    "fds_max": max((s["fds"] for s in live), default=None),
    "fds_last": live[-1]["fds"] if live else None,
    "audit_mib": [live[0]["audit_mib"], live[-1]["audit_mib"]] if live else None,
    "views_mib": [live[0]["views_mib"], live[-1]["views_mib"]] if live else None,
    "files_dropped": len(dropped),
    "computations_abandoned": max((s.get("abandoned", 0) for s in live), default=None),
    "downloads_running_max": max((s.get("downloads", 0) for s in live), default=None),
    "samples": samples,
}, indent=1))
