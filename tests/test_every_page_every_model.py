"""Every page opens for every zoo model without an exception. A model a page's method cannot take
(an early-exit model in a pipeline, the slimmable model in architecture conversion) gets a message
saying so, not a traceback; everything else opens without an error box."""

import sys

import pytest
from streamlit.testing.v1 import AppTest

from compression.models import zoo_names
from compression.paths import REPO_ROOT

PAGES = ["app.py", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "pages").glob("*.py"))]
REFUSALS = ("not supported", "does not support")


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_for_every_zoo_model(home, page):
    main = sys.modules["__main__"]
    try:
        for model in zoo_names():
            at = AppTest.from_file(str(REPO_ROOT / page), default_timeout=300)
            at.session_state["keep_sidebar_model"] = model
            at.run()
            assert not at.exception, f"{page} with {model}: {at.exception[0].value}"
            errors = [e.value for e in at.error if not any(r in e.value for r in REFUSALS)]
            assert not errors, f"{page} with {model}: {errors}"
    finally:
        sys.modules["__main__"] = main
