#!/usr/bin/env python3
"""Saturation side by side: one camera's newest segment (and its playlist) served
to wrk over loopback as fast as it will go, by Hearth and by nginx (sendfile, one
worker), each server pinned to core 0 and wrk to core 1. Prints each server's
CPU-seconds per Gbit and requests per CPU-second. This is the outsider's method
(the same object, both servers near saturation); `hearth-bench --peer nginx` is
the demand-bound one. Needs wrk, ffmpeg, nginx, taskset; uses ports 18080/18081/
18935/18090 on 127.0.0.1. Usage: bench/saturation.py [path/to/hearth] [runs]"""
import json, os, subprocess, sys, time, urllib.request, re, tempfile, signal
HEARTH = sys.argv[1] if len(sys.argv) > 1 else "target/release/hearth"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
SRC = tempfile.mkdtemp(prefix="sat-src-") + "/src.flv"
subprocess.run(["ffmpeg","-nostdin","-hide_banner","-loglevel","error","-f","lavfi","-i","testsrc2=size=1280x720:rate=25","-f","lavfi","-i","sine","-t","10","-c:v","libx264","-preset","veryfast","-pix_fmt","yuv420p","-b:v","2M","-g","50","-c:a","aac","-f","flv",SRC], check=True)
def clk(pid):
    """(user, kernel) CPU-seconds of every thread of `pid`."""
    u = k = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")",1)[1].split()
        u += int(f[11]); k += int(f[12])
    hz = os.sysconf("SC_CLK_TCK")
    return u / hz, k / hz
def req(url, data=None, token=None, method=None):
    r = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None, method=method)
    if data is not None: r.add_header("Content-Type","application/json")
    if token: r.add_header("Authorization", "Bearer "+token)
    return urllib.request.urlopen(r, timeout=10)
def wrk(url, token, secs):
    args = ["taskset","-c","1","wrk","-t1","-c8",f"-d{secs}s",url]
    if token: args += ["-H", "Authorization: Bearer "+token]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    reqs = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return reqs, out, int(non2xx.group(1)) if non2xx else 0
ROWS = {}
def measure(pid, url, token, size, secs=10, label=""):
    (u0, k0) = clk(pid); t0 = time.time()
    reqs, out, bad = wrk(url, token, secs)
    (u1, k1) = clk(pid); t1 = time.time()
    user, kern = u1 - u0, k1 - k0
    cpu = user + kern
    n = reqs * (t1 - t0)
    gbit = n * size * 8 / 1e9
    print(f"{label:16} size {size:>8} B  req/s {reqs:9.0f}  non-2xx {bad}  srv CPU-s {cpu:5.2f}  CPU-s/Gbit {cpu/gbit if gbit else 0:.4f}  req/CPU-s {n/cpu:8.0f}  per request: user {user/n*1e6:5.2f} us, kernel {kern/n*1e6:5.2f} us", flush=True)
    ROWS.setdefault(label, []).append((cpu / gbit, n / cpu, user / n * 1e6, kern / n * 1e6))

def run():
    d = tempfile.mkdtemp(prefix="sat-")
    def admin(args, stdin=""):
        return subprocess.run([HEARTH]+args+["--data-dir", d+"/data", "--rtmp", "127.0.0.1:18935"], input=stdin, capture_output=True, text=True, check=True).stdout
    admin(["user","add","--email","owner-a@example.com"], "pw-sat-123456\n")
    out = admin(["camera","add","--owner","owner-a@example.com","--name","sat"])
    ingest = [l.split(None,1)[1] for l in out.splitlines() if l.startswith("ingest ")][0]
    # Started on core 0 alone (as nginx's one worker is pinned there): its runtime
    # sizes itself to the cores it may use.
    p = subprocess.Popen(["taskset","-c","0",HEARTH, "serve", "--http", "127.0.0.1:18080", "--rtmp", "127.0.0.1:18935", "--admin", "127.0.0.1:18081", "--data-dir", d+"/data"], stdout=subprocess.DEVNULL, stderr=open(d+"/log","w"))
    pub = subprocess.Popen(["taskset","-c","1","ffmpeg","-nostdin","-hide_banner","-loglevel","error","-re","-stream_loop","-1","-i",SRC,"-c","copy","-f","flv",ingest])
    try:
        base = "http://127.0.0.1:18080"
        for _ in range(100):
            try: req(base+"/healthz"); break
            except Exception: time.sleep(0.2)
        tok = json.load(req(base+"/api/v1/login", {"email":"owner-a@example.com","password":"pw-sat-123456"}))["token"]
        cams = json.load(req(base+"/api/v1/cameras", token=tok))
        cams = cams["cameras"] if isinstance(cams, dict) else cams
        cam = cams[0]["id"]
        time.sleep(8)
        g = json.load(req(f"{base}/api/v1/cameras/{cam}/streams", data={}, token=tok, method="POST"))
        pl_url = g["hls_ts_url"]
        pl = req(pl_url, token=tok).read().decode()
        segs = [l for l in pl.splitlines() if l and not l.startswith("#")]
        seg_url = pl_url.rsplit("/",1)[0] + "/" + segs[-1]
        body = req(seg_url, token=tok).read()
        subprocess.run(["taskset","-a","-pc","0",str(p.pid)], capture_output=True)
        # baseline: the demo's own camera work
        c0 = sum(clk(p.pid)); time.sleep(5); base_cps = (sum(clk(p.pid))-c0)/5
        print(f"hearth baseline (simulated cameras, no load): {base_cps*100:.1f}% of a core; segment {len(body)} B; playlist {len(pl)} B", flush=True)
        measure(p.pid, seg_url, tok, len(body), secs=8, label="hearth segment")
        measure(p.pid, pl_url, tok, len(pl), label="hearth playlist")
        open("/dev/shm/sat-seg.ts","wb").write(body); open("/dev/shm/sat-pl.m3u8","w").write(pl)
    finally:
        pub.send_signal(signal.SIGTERM); pub.wait()
        p.send_signal(signal.SIGTERM); p.wait()
    # nginx
    nd = tempfile.mkdtemp(prefix="satn-", dir="/dev/shm")
    os.makedirs(nd+"/www"); os.rename("/dev/shm/sat-seg.ts", nd+"/www/seg.ts"); os.rename("/dev/shm/sat-pl.m3u8", nd+"/www/pl.m3u8")
    conf = f"""user root; worker_processes 1; pid {nd}/nginx.pid; error_log {nd}/error.log;
    events {{ worker_connections 1024; }}
    http {{ sendfile on; tcp_nopush on; access_log off; keepalive_requests 1000000;
     client_body_temp_path {nd}; proxy_temp_path {nd}; fastcgi_temp_path {nd}; uwsgi_temp_path {nd}; scgi_temp_path {nd};
     types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
     server {{ listen 127.0.0.1:18090; location / {{ root {nd}/www; }} }} }}"""
    open(nd+"/nginx.conf","w").write(conf)
    n = subprocess.Popen(["nginx","-c",nd+"/nginx.conf","-p",nd,"-g","daemon off;"])
    time.sleep(1)
    try:
        kids = [int(x) for x in subprocess.run(["pgrep","-P",str(n.pid)],capture_output=True,text=True).stdout.split()]
        w = kids[0]
        subprocess.run(["taskset","-pc","0",str(w)], capture_output=True)
        measure(w, "http://127.0.0.1:18090/seg.ts", None, os.path.getsize(nd+"/www/seg.ts"), label="nginx segment")
        measure(w, "http://127.0.0.1:18090/pl.m3u8", None, os.path.getsize(nd+"/www/pl.m3u8"), label="nginx playlist")
    finally:
        n.send_signal(signal.SIGTERM); n.wait()

for _ in range(RUNS):
    run()

def median(xs):
    xs = sorted(xs); m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2
print(f"\nmedians over {RUNS} run(s)")
for what in ("segment", "playlist"):
    h, n = ROWS[f"hearth {what}"], ROWS[f"nginx {what}"]
    for name, r in (("hearth", h), ("nginx", n)):
        print(f"{name:7} {what:9} CPU-s/Gbit {median([x[0] for x in r]):.4f}  req/CPU-s {median([x[1] for x in r]):8.0f}  user {median([x[2] for x in r]):6.2f} us/req  kernel {median([x[3] for x in r]):6.2f} us/req")
    per_pair = [nn[0] / hh[0] for hh, nn in zip(h, n)] if what == "segment" else [hh[1] / nn[1] for hh, nn in zip(h, n)]
    unit = "per byte (nginx CPU-s/Gbit / Hearth's)" if what == "segment" else "per request (Hearth req/CPU-s / nginx's)"
    print(f"hearth/nginx {unit}: median {median(per_pair):.2f}x, pairs " + " ".join(f"{x:.2f}" for x in per_pair))
    # However lean Hearth's own code, its time in the kernel stays: the best ratio
    # any user-space work could reach is nginx's whole cost over Hearth's kernel cost.
    kh = median([x[3] for x in h]); tn = median([x[2] + x[3] for x in n])
    if what == "playlist":
        print(f"  bound with zero Hearth user time: {tn / kh:.2f}x (nginx {tn:.2f} us/req in all, Hearth {kh:.2f} us/req in the kernel)")
