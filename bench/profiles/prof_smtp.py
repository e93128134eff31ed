import subprocess, sys, tempfile, time
from pathlib import Path
from bench.data import Databases, load_contacts, runtime
from bench import steps
from bench.run import free_port
wd = Path(tempfile.mkdtemp(prefix="b7prof-"))
dbs = Databases("sqlite", wd)
url = dbs.fresh("p")
load_contacts(runtime(url, wd), 3000)
steps.step_launch({"url": url, "workdir": str(wd)})
port = free_port()
sink = subprocess.Popen([sys.executable, "-m", "bench.sink", str(port)], stdout=subprocess.PIPE, text=True)
sink.stdout.readline()
from pyinstrument import Profiler
p = Profiler(); p.start()
print(steps.step_dispatch_smtp({"url": url, "workdir": str(wd), "limit": 1500, "port": port, "connections": 4, "concurrency": 8}))
p.stop()
sink.terminate(); sink.wait()
print(p.output_text(unicode=False, color=False)[:7000])
dbs.drop_all()
