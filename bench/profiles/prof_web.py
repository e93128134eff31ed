import tempfile, time
from dataclasses import replace
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
wd = Path(tempfile.mkdtemp(prefix="b7prof-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("w")
load_contacts(runtime(url, wd), 2000)
cid = steps.step_launch({"url": url, "workdir": str(wd)})["campaign_id"]
steps.step_tokens({"url": url, "workdir": str(wd), "campaign_id": cid, "count": 300, "out": str(wd / "t.txt")})
tokens = (wd / "t.txt").read_text().split()
import asyncio
import httpx2
from bench.web import product_app
app = product_app(url, str(wd))
from pyinstrument import Profiler
async def go(method):
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for tok in tokens:
            r = await client.get("/p/" + tok) if method == "GET" else await client.post("/p/" + tok, data={"action": "confirm", "email": "yes", "sms": "yes"})
            assert r.status_code == 200, r.status_code
for method in ("GET", "POST"):
    p = Profiler(async_mode="disabled"); p.start()
    t = time.perf_counter()
    asyncio.run(go(method))
    p.stop()
    print(method, len(tokens) / (time.perf_counter() - t), "req/s in-process")
    print(p.output_text(unicode=False, color=False)[:5500])
dbs.drop_all()
