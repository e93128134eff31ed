"""Profile the sweep and its raw ceiling at 20k contacts on SQLite (pyinstrument)."""
import tempfile
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
wd = Path(tempfile.mkdtemp(prefix="b7prof-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("s")
load_contacts(runtime(url, wd), 20000)
cid = steps.step_launch({"url": url, "workdir": str(wd)})["campaign_id"]
copy = dbs.copy(url, "raw")
from pyinstrument import Profiler
p = Profiler(); p.start()
print(steps.step_sweep({"url": url, "workdir": str(wd)}))
p.stop()
print(steps.step_sweep_raw({"url": copy, "workdir": str(wd), "campaign_id": cid}))
print(p.output_text(unicode=False, color=False)[:6000])
dbs.drop_all()
