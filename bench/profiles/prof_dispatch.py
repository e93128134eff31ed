import asyncio, sys, tempfile, time
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
from orchestrator.domain.model import Channel
wd = Path(tempfile.mkdtemp(prefix="b7prof-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("p")
load_contacts(runtime(url, wd), 3000)
print(steps.step_launch({"url": url, "workdir": str(wd)}))
from pyinstrument import Profiler
p = Profiler()
p.start()
print(steps.step_dispatch_null({"url": url, "workdir": str(wd), "limit": 2000}))
p.stop()
print(p.output_text(unicode=False, color=False, show_all=False)[:9000])
dbs.drop_all()
