"""The home page's 'Bring your own model' in headless Chromium: a torchvision ResNet-18 the user
trained (pixels in [0, 1]) on an image folder, uploaded as a file for the architecture picked from
the searchable list, with its normalization; evaluated, kept, and selected in the sidebar."""

import torch
from PIL import Image

from benchmarks.browser import exception_boxes, select_option, wait_until_idle
from support import COLOURS, colour_folder  # tests/support.py

def _folder_and_weights(root):
    import numpy
    import torchvision
    colour_folder(root)
    xs, ys = [], []
    for label, cls in enumerate(sorted(COLOURS)):
        for path in sorted((root / "train" / cls).glob("*.png")):
            with Image.open(path) as im:
                xs.append(torch.from_numpy(numpy.array(im.convert("RGB"))).permute(2, 0, 1).float() / 255)
            ys.append(label)
    x, y = torch.stack(xs), torch.tensor(ys)
    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(25):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(x)
    weights = root / "colours.pt"
    torch.save(model.eval().state_dict(), weights)
    return weights


def test_upload_a_torchvision_model_in_a_real_browser(app_url, page, screenshots, tmp_path):
    weights = _folder_and_weights(tmp_path / "colours")
    page.goto(app_url)
    page.get_by_text("Test accuracy").first.wait_for(timeout=90_000)
    wait_until_idle(page)
    select_option(page, "Dataset", "Image folder…", sidebar=True)
    wait_until_idle(page)
    box = page.get_by_test_id("stSidebar").get_by_role("textbox", name="Image folder")
    for attempt in range(4):  # the home card's timing reruns the page: the box may be redrawn under us
        try:
            box.fill(str(tmp_path / "colours"), timeout=15_000)
            box.press("Enter", timeout=15_000)
            break
        except Exception:
            if attempt == 3:
                raise
            wait_until_idle(page, 120_000)
    page.get_by_text("Test accuracy").first.wait_for(timeout=120_000)
    wait_until_idle(page, 120_000)

    page.get_by_text("Bring your own model").click()
    page.get_by_text("torchvision", exact=True).first.click()
    wait_until_idle(page)
    architecture = page.get_by_test_id("stSelectbox").filter(has_text="Architecture").first
    option = page.get_by_role("option", name="torchvision:resnet18", exact=True)
    for attempt in range(4):  # the list holds every torchvision classifier: open it and search it
        architecture.click()
        page.keyboard.type("resnet18")
        try:
            option.first.wait_for(timeout=15_000)
            option.first.click()
            break
        except Exception:  # a rerun closed the list: again
            if attempt == 3:
                raise
            page.keyboard.press("Escape")
            wait_until_idle(page, 120_000)
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Weights file")  # not the zip's
    wait_until_idle(page, 120_000)
    with page.expect_file_chooser(timeout=60_000) as chooser:  # as a person does it: click Upload, pick the file
        uploader.get_by_role("button", name="Upload", exact=True).click()
    chooser.value.set_files(str(weights))
    page.get_by_text("colours.pt").first.wait_for(timeout=120_000)  # 45 MB: uploaded before the next widget
    wait_until_idle(page)
    select_option(page, "Normalization the weights expect", "none (pixels in [0, 1])")
    name = page.get_by_role("textbox", name="Name for the model")
    name.fill("colours-browser")
    name.press("Enter")
    wait_until_idle(page)
    page.get_by_role("button", name="Load and evaluate").click()
    chosen = page.get_by_test_id("stSidebar").get_by_text("Named model (uploaded, torchvision:resnet18)")
    try:
        chosen.first.wait_for(timeout=300_000)  # the sidebar's caption of the selected model
    except Exception:  # say what the page shows instead
        page.screenshot(path=str(screenshots / "home-own-model-failed.png"), full_page=True)
        raise AssertionError(page.inner_text("body")[:3000]) from None
    wait_until_idle(page, 120_000)
    page.get_by_text("Input contract:").first.wait_for(timeout=120_000)
    body = page.inner_text("body")
    assert "Your weights (colours.pt) for torchvision:resnet18" in body
    assert "100.00 %" in body  # the user's weights, read with their normalization: every image right
    assert "Input contract: 3 x 32 x 32, mean 0/0/0, std 1/1/1" in body
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "home-own-model.png"), full_page=True)
