"""Streamlit glue shared by app.py and pages/: cached loaders, background jobs, the sidebar and
widgets. Figures and number formatting are in compression.charts (streamlit-free, testable without
a browser); the core is compression/."""
