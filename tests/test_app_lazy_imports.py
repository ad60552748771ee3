"""Home, Dataset and Train open without importing TensorFlow (checked in a fresh interpreter).

Train loads Keras only in the child process a run starts, never in the app's own. (A
served app warms the shipped model up in a background thread after its first page run;
that is turned off here, so what is checked is the pages' own imports.)
"""

from __future__ import annotations

import os

from helpers import ROOT, run_fresh, write_dataset

SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest

at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
errors = [str(e.value) for e in at.exception]
at.switch_page("pages/dataset.py").run()
for tab in ("Statistics", "Warnings (3)", "Augmentation preview", "Photos"):
    at.session_state["dataset_tab"] = tab
    at.run()
    errors += [str(e.value) for e in at.exception]
images = len(at.image[0].value) if at.image else 0
at.switch_page("pages/train.py").run()
errors += [str(e.value) for e in at.exception]
print(json.dumps({
    "errors": errors,
    "images": images,
    "train_form": [b.label for b in at.get("form_submit_button")],
    "heavy": sorted(m for m in ("tensorflow", "keras") if m in sys.modules),
}))
"""


def test_home_dataset_and_train_do_not_import_tensorflow(tmp_path):
    env = {
        **os.environ,
        "BIKE_RECOGNITION_WORKDIR": str(tmp_path / "sessions"),
        "BIKE_RECOGNITION_DEMO_DATA": str(write_dataset(tmp_path / "demo", split=True)),
        "BIKE_RECOGNITION_DEMO_MODEL": str(tmp_path / "no-model"),
        # The pages themselves: the server's warm-up loads TensorFlow in the background
        # on purpose, after the first page run (tested in test_app_classify.py).
        "BIKE_RECOGNITION_WARM_UP": "0",
        "PYTHONPATH": str(ROOT),
    }
    report = run_fresh(SCRIPT, env, str(ROOT / "streamlit_app.py"), timeout=300)
    assert report["errors"] == []
    assert report["images"] == 18  # the pages really ran
    assert report["train_form"] == ["Start training"]
    assert report["heavy"] == []
