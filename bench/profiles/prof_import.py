import tempfile, time
from pathlib import Path
from bench.data import Databases, runtime, write_csv
from orchestrator.contacts.service import import_contacts
wd = Path(tempfile.mkdtemp(prefix="b7prof-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("i")
csv = write_csv(wd / "c.csv", 20000)
from pyinstrument import Profiler
p = Profiler(); p.start()
t = time.perf_counter(); r = import_contacts(runtime(url, wd), csv); print(r.summary(), 20000 / (time.perf_counter() - t), "rows/s")
p.stop()
print(p.output_text(unicode=False, color=False)[:6000])
dbs.drop_all()
