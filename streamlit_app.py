"""Bike Recognition: the entry point. `streamlit run streamlit_app.py`.

Builds the navigation over the page scripts in `pages/`; each page is a thin script
over `bikelib`. Only this file sets the page config, so every page shares it. It also
keeps the session's heartbeat (`bikelib.presence`): a fragment beats every 30 s
(BIKE_RECOGNITION_HEARTBEAT_SECONDS) while the tab is open and a page run counts as
present, so a closed tab's training ends.
"""

import streamlit as st

import app_models
import app_ui
from bikelib import presence
from bikelib.memory import fix_mmap_threshold, limit_malloc_arenas
from bikelib.sessions import Workspace
from bikelib.settings import settings

# Before TensorFlow and most visitors' threads: fewer malloc arenas, less memory held
# (where the server started without MALLOC_ARENA_MAX), and large blocks given back.
limit_malloc_arenas()
fix_mmap_threshold()

st.set_page_config(page_title="Bike Recognition", page_icon="🚲", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/classify.py", title="Classify", icon=":material/image_search:"),
        st.Page("pages/scan.py", title="Scan listings", icon=":material/travel_explore:"),
    ]
)
# A first visit by direct link (/train) right after the server starts runs the page
# without this script (Streamlit's older pages/ folder mode); app_ui.through_the_entry
# sends it here, and here on to the page it asked for, now with this navigation.
st.session_state[app_ui.VIA_ENTRY] = True
wanted = st.session_state.pop(app_ui.WANTED_PAGE, None)
if wanted:
    st.switch_page(wanted)
session_id = Workspace.for_session(st.session_state).session_id


@st.fragment(run_every=settings().heartbeat_seconds)  # 30 s; tests/test_browser.py: 1 s
def heartbeat() -> None:
    """This tab is still open: beats while the browser is connected, stops when closed."""
    presence.beat(session_id)


with st.sidebar:
    heartbeat()
with presence.attending(session_id):  # a page still running is not a closed tab
    try:
        navigation.run()
    finally:  # after the page, not competing with it: the shipped model, in the background
        app_models.warm_up()
