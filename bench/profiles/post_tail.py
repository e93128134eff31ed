"""POST /p/{token} one request at a time, in process (httpx ASGI transport, 50k contacts, 1,000 tokens,
5 rounds): the server-side time of each request, to tell a server stall from queueing under load."""
import asyncio, tempfile, time, statistics
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
wd = Path(tempfile.mkdtemp(prefix="pt-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("w")
load_contacts(runtime(url, wd), 50000)
cid = steps.step_launch({"url": url, "workdir": str(wd)})["campaign_id"]
steps.step_tokens({"url": url, "workdir": str(wd), "campaign_id": cid, "count": 1000, "out": str(wd / "t.txt")})
tokens = (wd / "t.txt").read_text().split()
import httpx2
from bench.web import product_app
app = product_app(url, str(wd))
import gc
gcs = []
def cb(phase, info):
    if phase == "start": cb.t = time.perf_counter()
    else: gcs.append((info["generation"], time.perf_counter() - cb.t))
gc.callbacks.append(cb)
async def go():
    times = []
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for rnd in range(5):
            for tok in tokens:
                t = time.perf_counter()
                r = await client.post("/p/" + tok, data={"action": "confirm", "email": "yes", "sms": "yes"})
                times.append((time.perf_counter() - t, rnd))
                assert r.status_code == 200, r.status_code
    return times
times = asyncio.run(go())
ts = sorted(t for t, _ in times)
print("n", len(ts), "p50 %.2f ms p99 %.2f ms p99.9 %.2f max %.2f" % (ts[len(ts)//2]*1e3, ts[int(len(ts)*.99)]*1e3, ts[int(len(ts)*.999)]*1e3, ts[-1]*1e3))
slow = [(round(t*1e3,1), r) for t, r in times if t > 0.02]
print("slow (>20ms):", slow[:30])
print("gc gen2 pauses ms:", [round(d*1e3,1) for g, d in gcs if g == 2][:20], "gen1 max", max([d for g,d in gcs if g==1] or [0])*1e3)
dbs.drop_all()
