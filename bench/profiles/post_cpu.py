"""CPU per POST /p/{token} re-answer in process, one at a time (httpx ASGI transport, 5,000 contacts,
300 tokens): the first round answers every token (and reads the brand inside an answer), the next four
are timed with time.process_time(). Run under each checkout: PYTHONPATH=<checkout> python <this file>."""
import asyncio, tempfile, time
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
wd = Path(tempfile.mkdtemp(prefix="pc-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("w")
load_contacts(runtime(url, wd), 5000)
cid = steps.step_launch({"url": url, "workdir": str(wd)})["campaign_id"]
steps.step_tokens({"url": url, "workdir": str(wd), "campaign_id": cid, "count": 300, "out": str(wd / "t.txt")})
tokens = (wd / "t.txt").read_text().split()
import httpx2
from bench.web import product_app
app = product_app(url, str(wd))
form = {"action": "confirm", "email": "yes", "sms": "yes"}
async def go() -> float:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for tok in tokens:
            assert (await client.post("/p/" + tok, data=form)).status_code == 200
        t = time.process_time()
        for _ in range(4):
            for tok in tokens:
                assert (await client.post("/p/" + tok, data=form)).status_code == 200
        return (time.process_time() - t) * 1000 / (4 * len(tokens))
print(f"cpu ms per re-answer: {asyncio.run(go()):.3f}", "connections in pool:", app.state.rt.engine.pool.checkedin())
dbs.drop_all()
