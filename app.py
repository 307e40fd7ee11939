"""The app's entry point (`streamlit run app.py`): the navigation, sections Compress, Combine and
Review under Home (ui/navigation.py). Each page is a script in pages/; Home is pages/0_Home.py.

`streamlit run app.py` finds the st.App below (Streamlit's ASGI server) and imports this file as a
module: its lifespan starts the warm start (ui/warm.py) when the server starts, before anyone
opens the page. Every session runs this file as its script (`__main__`): the navigation."""

import streamlit as st

from ui import warm

if __name__ == "__main__":  # a session's script run (and AppTest's)
    from ui.navigation import pages
    from ui.streamlit_fixes import fragments_dropped_on_stop

    warm.start()  # started by the lifespan already when served; here for AppTest and plain imports
    if "share" in st.query_params:  # a review link: that view, read-only, no sign-in, nothing else
        from ui.share_view import shared_page
        with fragments_dropped_on_stop():
            st.navigation([st.Page(shared_page, title="Shared review", url_path="shared")], position="hidden").run()
    else:
        with fragments_dropped_on_stop():  # a page that stops early keeps no polling fragment of its last run
            st.navigation(pages()).run()
else:  # imported by `streamlit run app.py` (uvicorn): the server
    from ui.streamlit_fixes import keep_file_url_responses

    keep_file_url_responses()  # an upload's answer survives a script run starting (ui/streamlit_fixes.py)
    app = st.App(__file__, lifespan=warm.lifespan)
