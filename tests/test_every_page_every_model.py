"""Every page opens for every kind of model reference without an exception: each zoo model, a
torchvision architecture on an image folder, and an entry-point model from an installed package.
A model a page's method cannot take (an early-exit model in a pipeline, the slimmable model in
architecture conversion) gets a message saying so, not a traceback; everything else opens without
an error box. The sidebar also survives a missing image folder and a dataset it cannot download.

The non-zoo references run on a tiny image folder (3 classes, 8 train + 4 test RGB 32x32 PNGs),
with latency timed on 3 forwards and one intra-op thread (on 2 busy shared cores, two threads
that wait for each other make a forward many times slower); latency is not what is checked here."""

import sys

import pytest
from streamlit.testing.v1 import AppTest

from compression.models import zoo_names
from support import quick_cpu_timing, write_tinted_folder
from compression.paths import REPO_ROOT

# Home is pages/0_Home.py; app.py only builds the navigation to it (tests/test_app_home.py opens it)
PAGES = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "pages").glob("*.py"))
REFUSALS = ("not supported", "does not support")
CHEAP = {"pages/3_Quantization.py": {"quant_bits": 4}}  # no int8 kernel search (8-bit uniform only)


# one test per page and model, so that `make test`'s two workers share them out evenly
@pytest.mark.parametrize("model", zoo_names())
@pytest.mark.parametrize("page", PAGES)
def test_page_opens_for_every_zoo_model(home, page, model):
    at = AppTest.from_file(str(REPO_ROOT / page), default_timeout=300)
    at.session_state["keep_sidebar_model"] = model
    if not model.startswith("lenet5"):  # the int8 kernel search (~30 s a cnn) opens for the two lenet5s only
        for key, value in CHEAP.get(page, {}).items():
            at.session_state[key] = value
    at.run()
    assert not at.exception, f"{page} with {model}: {at.exception[0].value}"
    errors = [e.value for e in at.error if not any(r in e.value for r in REFUSALS)]
    assert not errors, f"{page} with {model}: {errors}"


# ---------------------------------------------------------------------------------------------
# torchvision and entry-point references on an image folder

TEAMNET = '''
import torch.nn as nn


def tiny(*, num_classes=10, in_channels=1, image_size=28):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, num_classes))
'''


@pytest.fixture(scope="module")
def quick_cpu():
    with quick_cpu_timing():
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes (a tint each, plus noise) x 8 train + 4 test RGB 32x32 PNGs."""
    root = tmp_path_factory.mktemp("pagefolder")
    write_tinted_folder(root, classes=3, train=8, test=4, tint=lambda c: (c, 120))
    return root


@pytest.fixture(scope="module")
def teamnet(tmp_path_factory):
    """An installed package registering `tiny` under compression_explorer.models."""
    site = tmp_path_factory.mktemp("site")
    (site / "teamnet_pages").mkdir()
    (site / "teamnet_pages" / "__init__.py").write_text(TEAMNET)
    info = site / "teamnet_pages-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: teamnet-pages\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[compression_explorer.models]\ntiny = teamnet_pages:tiny\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(site))
        yield "entry:tiny"
    sys.modules.pop("teamnet_pages", None)


def _open(page: str, model: str, folder, **state) -> AppTest:
    from ui.sidebar import IMAGE_FOLDER
    at = AppTest.from_file(str(REPO_ROOT / page), default_timeout=300)
    at.session_state["keep_sidebar_dataset"] = IMAGE_FOLDER
    at.session_state["keep_sidebar_folder"] = str(folder)
    at.session_state["keep_sidebar_model"] = model
    for key, value in {**CHEAP.get(page, {}), **state}.items():
        at.session_state[key] = value
    return at.run()


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("model", ["torchvision:squeezenet1_1", "entry:tiny"])
def test_page_opens_for_torchvision_and_entry_models(home, quick_cpu, folder, teamnet, page, model):
    at = _open(page, model, folder)
    assert not at.exception, f"{page} with {model}: {at.exception[0].value}"
    assert [e.value for e in at.error] == [], f"{page} with {model}"
    assert at.sidebar.selectbox(key="sidebar_model").value == model  # the page follows the sidebar's choice
    caption = " ".join(c.value for c in at.sidebar.caption)
    assert "Input 3x32x32, 3 classes" in caption  # built for the folder: its channels and classes
    assert ("random weights" if model.startswith("torchvision:") else "teamnet_pages:tiny") in caption
    if page.endswith("0_Home.py"):
        assert at.subheader[0].value == f"Baseline: {model} on imagefolder:{folder}"
        assert {m.label for m in at.metric} >= {"Test accuracy", "Parameters", "MACs / image"}
    if page.endswith("5_Dynamic_computation.py"):  # no exits: one line naming the model
        assert any(i.value.startswith(f"{model} has no early exits") for i in at.info)


def test_sidebar_offers_every_kind_for_rgb_data(home, quick_cpu, folder, teamnet):
    at = _open("pages/6_Pareto_explorer.py", "torchvision:resnet18", folder)
    options = at.sidebar.selectbox(key="sidebar_model").options
    assert options[:7] == ["entry:tiny", "torchvision:resnet18", "torchvision:mobilenet_v2",
                           "torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0",
                           "torchvision:shufflenet_v2_x0_5", "torchvision:squeezenet1_1"]
    assert "torchvision:vgg11" in options and not any(o in zoo_names() for o in options)  # grayscale zoo: not offered
    at.sidebar.selectbox(key="sidebar_dataset").set_value("fashion-mnist").run()  # grayscale: no torchvision
    options = at.sidebar.selectbox(key="sidebar_model").options
    assert options == zoo_names() + ["entry:tiny"] and not at.exception


def test_missing_folder_and_offline_dataset_do_not_break_the_page(home, tmp_path):
    at = _open("pages/0_Home.py", "cnn", tmp_path / "nowhere")
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == [f"imagefolder: {str(tmp_path / 'nowhere')!r} is not a folder"]
    # a dataset that is neither installed nor downloadable says so in its label, and how to install it
    assert "cifar10 (not installed)" in at.sidebar.selectbox(key="sidebar_dataset").options
    at.sidebar.selectbox(key="sidebar_dataset").set_value("cifar10").run()  # not here, and no downloads offline
    assert not at.exception and not at.error
    assert any(c.value.startswith("cifar10 is not installed: put cifar-10-batches-py") for c in at.sidebar.caption)
    at.sidebar.selectbox(key="sidebar_dataset").set_value("fashion-mnist").run()
    assert not at.exception and at.subheader[0].value == "Baseline: cnn on fashion-mnist"


def test_distillation_page_trains_a_student_of_an_entry_point_teacher(home, quick_cpu, folder, teamnet):
    at = _open("pages/2_Distillation.py", teamnet, folder, distill_epochs=1, distill_labeled=1000)
    at.button(key="distill_start").click().run()
    job = at.session_state["distill_job"].wait(300)
    assert job.status == "done", job.error
    assert [row["role"] for row in job.result] == ["hard labels", "distilled"]  # without, then with the teacher
    from compression.store import RunStore
    runs = RunStore().runs(model=teamnet, dataset=f"imagefolder:{folder}", method="distill")
    assert len(runs) == 2 and {r["config"]["teachers"][0] for r in runs} == {teamnet}
