"""CPU per preference-page answer in process, one request at a time: 200 people answer once, then
five times again (a re-answer, as the load test's repeated tokens do); prints SQL statements and
CPU ms per re-answer. ``PYTHONPATH=<checkout> python bench/profiles/prof_reanswer.py`` in each
checkout to compare two commits (bench/RESULTS.md, 2026-11-30)."""

import asyncio
import tempfile
import time
from pathlib import Path

import httpx2
from sqlalchemy import event

from bench import steps
from bench.data import Databases, load_contacts, runtime
from bench.web import product_app

wd = Path(tempfile.mkdtemp(prefix="reanswer-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("w")
load_contacts(runtime(url, wd), 2000)
cid = steps.step_launch({"url": url, "workdir": str(wd)})["campaign_id"]
steps.step_tokens({"url": url, "workdir": str(wd), "campaign_id": cid, "count": 200, "out": str(wd / "t.txt")})
tokens = (wd / "t.txt").read_text().split()
app = product_app(url, str(wd))
count = [0]
event.listen(app.state.rt.engine, "before_cursor_execute", lambda *a: count.__setitem__(0, count[0] + 1))


async def answer(rounds: int) -> None:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for _ in range(rounds):
            for tok in tokens:
                r = await client.post("/p/" + tok, data={"action": "confirm", "email": "yes", "sms": "yes"})
                assert r.status_code == 200, r.status_code


asyncio.run(answer(1))
count[0] = 0
started = time.process_time()
asyncio.run(answer(5))
n = 5 * len(tokens)
print(f"re-answer: {count[0] / n:.2f} statements/POST, {(time.process_time() - started) / n * 1000:.2f} ms CPU/POST")
dbs.drop_all()
