"""Streamlit-side helpers shared by app.py and pages/: cached loaders, the sidebar, formatting,
and pure plot builders (ui.charts, testable without a browser). The core stays in compression/."""
