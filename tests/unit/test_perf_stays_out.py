"""The application imports without the measurement tools' dependencies: Locust, gevent and
matplotlib belong to the `perf` dependency group and to perf/, never to `orderflow`."""

import json
import subprocess
import sys

PERF_ONLY = ("locust", "gevent", "matplotlib")

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import orderflow
names = [
    m.name
    for m in pkgutil.walk_packages(orderflow.__path__, "orderflow.")
    if m.name.rsplit(".", 1)[-1] != "__main__"  # `python -m orderflow` runs the CLI
]
for name in names:
    importlib.import_module(name)
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))
print(json.dumps({"modules": len(names), "loaded": loaded}))
"""


def test_no_module_of_orderflow_imports_locust_gevent_or_matplotlib() -> None:
    # A fresh interpreter: this one may have imported anything already.
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, *PERF_ONLY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["modules"] > 50, answer  # the walk found the application
    assert answer["loaded"] == [], f"orderflow imports {answer['loaded']}"
