"""The app's entry point (`streamlit run app.py`): the navigation, sections Compress, Combine and
Review under Home (ui/navigation.py). Each page is a script in pages/; Home is pages/0_Home.py."""

import streamlit as st

from ui import warm
from ui.navigation import pages

warm.start()  # once per server process: the pages' one-time work in the background (ui/warm.py)
st.navigation(pages()).run()
