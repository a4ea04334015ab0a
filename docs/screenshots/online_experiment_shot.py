"""The online_experiment screenshot in the README: a simulated log, one real materialization, headless chromium.

    .venv/bin/python docs/screenshots/online_experiment_shot.py

Simulates a week of page_builder traffic with a challenger 35% worse (the simulator logs only,
through the importer and ingestion), materializes `online_experiment` with the `dagster` CLI in a
temporary DAGSTER_HOME, serves the UI with dagster-webserver and saves the partition's metadata as
docs/screenshots/online_experiment.png. Needs Debian's chromium and chromium-driver (`make install`).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

root = Path(tempfile.mkdtemp(prefix="ui-online-"))
fw, dh = root / "fw", root / "dh"
fw.mkdir()
dh.mkdir()
env = {
    **os.environ,
    "FLYWHEEL_HOME": str(fw),
    "DAGSTER_HOME": str(dh),
    "FLYWHEEL_SOURCE_URL": f"sqlite:///{fw}/simulation.db",
}
os.environ.update(env)
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from pipeline.experiments.simulate import simulate  # noqa: E402 - after FLYWHEEL_HOME is set

print(simulate("page_builder", -0.35, 3, days=7, mode="store", looks=False, home=fw)["interactions"])
import dagster as dg  # noqa: E402 - after DAGSTER_HOME is set

(dh / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
inst = dg.DagsterInstance.get()
inst.add_dynamic_partitions("training_targets", ["page_builder"])
py = str(REPO / ".venv" / "bin" / "python")
r = subprocess.run(
    [
        py,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "pipeline.definitions",
        "--select",
        "online_experiment",
        "--partition",
        "page_builder",
    ],
    env=env,
    cwd=str(REPO),
    capture_output=True,
    text=True,
)
print(r.returncode, r.stderr[-1500:])
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
web = subprocess.Popen(
    [py, "-m", "dagster_webserver", "-m", "pipeline.definitions", "-p", str(port), "-h", "127.0.0.1"],
    env=env,
    cwd=str(REPO),
    stdout=open(root / "web.log", "w"),
    stderr=subprocess.STDOUT,
)
try:
    import urllib.request

    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info")
            break
        except OSError:
            time.sleep(1)
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    o = webdriver.ChromeOptions()
    o.binary_location = shutil.which("chromium")
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1700,1000",
    ):
        o.add_argument(a)
    d = webdriver.Chrome(options=o, service=Service(shutil.which("chromedriver")))
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1700, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    d.get(f"http://127.0.0.1:{port}/assets/online_experiment?view=partitions&partition=page_builder")
    for _ in range(90):
        body = d.find_element(By.TAG_NAME, "body").text
        if "significantly worse" in body and "variants" in body:
            break
        time.sleep(1)
    time.sleep(2)
    for b in d.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        b.click()
        time.sleep(1)
    try:
        row = d.find_element(By.XPATH, "//td[normalize-space()='summary']")
        d.execute_script("arguments[0].scrollIntoView({block: 'start'}); window.scrollBy(0, -60);", row)
        time.sleep(1)
    except NoSuchElementException as e:
        print("no decision row", e)
    d.save_screenshot(str(REPO / "docs" / "screenshots" / "online_experiment.png"))
    print(d.find_element(By.TAG_NAME, "body").text[:3000])
    d.quit()
finally:
    web.terminate()
    web.wait(30)
