"""Plotly figures and number formatting: pure functions of plain values and DataFrames, used by the
pages and by the self-contained HTML report (compression.report). Never imports streamlit or ui/.

format        numbers with units (bytes, counts, ms, %, CI)
runs          method colors, stored runs -> frame, accuracy against stored size
pareto        the Pareto explorer's frames and figures (shared with the report)
pruning  distillation  quantization  architecture  dynamic  pipeline
              one module per page's figures
"""
