"""A wrapper of bench.web's app for web_ab.py --server-script: URL PORT WORKDIR; on SIGUSR1 prints the change since
the last signal of: pool connections opened, SQL statements, GC collections (count, ms, collected), log records
made; a checkout while another connection is checked out prints its stack once. GCOFF=1, FREEZE=1, NOBT=1 in
the environment: gc disabled, gc.freeze() after start-up, no body timeout (diagnostics only)."""
import gc, os, sys, time, collections, signal
import uvicorn
from sqlalchemy import event
from bench.web import product_app, UVICORN
url, port, wd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
app = product_app(url, wd)
eng = app.state.rt.engine
if os.environ.get("NOBT"):  # no body timeout (the guard's wait_for per receive)
    from dataclasses import replace as _r
    app.state.rt.config.server = _r(app.state.rt.config.server, body_timeout_seconds=None)
c = collections.Counter()
@event.listens_for(eng, "connect")
def _c(*a): c["connect"] += 1
import traceback
@event.listens_for(eng, "checkout")
def _nested(*a):
    if eng.pool.checkedout() > 1 and not c["nested_shown"]:
        c["nested_shown"] += 1
        print("NESTED CHECKOUT\n" + "".join(traceback.format_stack(limit=14)), file=sys.stderr, flush=True)
@event.listens_for(eng, "before_cursor_execute")
def _ex(conn, cur, stmt, *a): c["stmt"] += 1
import logging
_mk = logging.Logger.makeRecord
def _make(self, name, level, fn, lno, msg, *a, **k):
    c["log:" + name + ":" + str(msg)[:60]] += 1
    return _mk(self, name, level, fn, lno, msg, *a, **k)
logging.Logger.makeRecord = _make
gct = {}
def cb(phase, info):
    if phase == "start": gct["t"] = time.perf_counter()
    else:
        g = info["generation"]; c[f"gc{g}"] += 1; c[f"gc{g}_ms"] += (time.perf_counter() - gct["t"]) * 1000
        c[f"gc{g}_collected"] += info["collected"]
gc.callbacks.append(cb)
print("TRACKED at start", len(gc.get_objects()), "freeze" if os.environ.get("FREEZE") else "", file=sys.stderr, flush=True)
if os.environ.get("GCOFF"):
    gc.disable()
if os.environ.get("FREEZE"):
    gc.freeze()
last = collections.Counter()
types = collections.Counter()
def report(*a):
    d = {k: round(v - last[k], 1) for k, v in c.items() if v - last[k]}
    last.update(d)
    print("DELTA", d, "tracked", len(gc.get_objects()), file=sys.stderr, flush=True)
signal.signal(signal.SIGUSR1, report)
uvicorn.run(app, port=port, **UVICORN)
