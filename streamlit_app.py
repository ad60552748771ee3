"""Bike Recognition: the entry point. `streamlit run streamlit_app.py`.

Builds the navigation over the page scripts in `pages/`; each page is a thin script
over `bikelib`. Only this file sets the page config, so every page shares it.
"""

import streamlit as st

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
navigation.run()
