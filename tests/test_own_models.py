"""A user's own trained model, through every command: --weights everywhere, named models, the
model's input contract, run:<id>, published weights fine-tuned (issue 27, model side).

The model is a torchvision ResNet-18 trained here for a few steps on a 3-class folder of solid
colours: its weights are not a random init (accuracy 1.0 against about a third for the init), so
a command that silently dropped --weights would report the init's accuracy instead."""

import hashlib
import json

import pytest
import torch

from compression import CompressionError
from support import colour_folder  # tests/support.py

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return colour_folder(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """(weights file, dataset name): ResNet-18 trained with pixels in [0, 1] (no normalization), as
    a user's own loop would, outside this project's training code."""
    import torchvision
    from compression.data import load_dataset
    name = f"imagefolder:{folder}"
    data = load_dataset(name)
    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data.train.images.float() / 255, data.train.labels
    model.train()
    for _ in range(25):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for m in model.modules():  # BatchNorm statistics of the trained network, exactly (not a lagging average)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        own = (model(data.test.images.float() / 255).argmax(1) == data.test.labels).float().mean().item()
    assert own == 1.0  # solid colours: learnt in a few steps (the bound the tests below compare with)
    path = tmp_path_factory.mktemp("weights") / "colours.pt"
    torch.save(model.state_dict(), path)
    return path, name


def _cli(capsys, *argv):
    from compression.cli import main
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_evaluate_with_weights_equals_the_users_loop_and_records_the_file(trained, capsys, home):
    path, data = trained
    mine = _cli(capsys, "evaluate", "--model", "torchvision:resnet18", "--weights", str(path),
                "--normalize", "none", "--dataset", data)[0]
    init = _cli(capsys, "evaluate", "--model", "torchvision:resnet18", "--dataset", data)[0]
    assert mine["accuracy"] == 1.0 and mine["accuracy_n"] == 18  # the user's loop: 18 of 18
    assert init["accuracy"] < 0.7  # a random init: the weights were not dropped
    source = mine["model_source"]
    assert source["weights"] == "colours.pt"
    assert source["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert source["contract"]["mean"] == [0.0, 0.0, 0.0] and source["contract"]["std"] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("argv", [
    ["prune", "--method", "structured", "--ratio", "0.3"],
    ["quantize", "--bits", "8"],
    ["architecture", "--convert", "low-rank", "--energy", "0.99"],
    ["pipeline", "--steps", "prune:unstructured:0.3,quantize:uniform:8"],
    ["early-exit", "--attach", "layer1,layer2", "--attach-epochs", "1", "--threshold", "0.99", "--latency-images", "5"],
    ["budget", "--max-bytes", "40000000", "--methods", "quantize"],
    ["search", "--trials", "1", "--max-bytes", "40000000", "--methods", "quantize", "--no-grid"],
], ids=lambda a: a[0])
def test_every_command_takes_weights(trained, capsys, home, argv):
    """The run's baseline is the model with the user's weights (1.0), not the random init, and the
    stored run names the file and its SHA-256."""
    path, data = trained
    rows = _cli(capsys, *argv, "--model", "torchvision:resnet18", "--weights", str(path), "--normalize", "none",
                "--dataset", data)
    results = [r for r in rows if "baseline" in r]
    assert results, rows
    for r in results:
        assert r["baseline"]["accuracy"] == 1.0, r["method"]
        assert r["model"] == "torchvision:resnet18+colours.pt"
    from compression.store import RunStore
    stored = [r for r in RunStore().runs() if r["model"] == "torchvision:resnet18+colours.pt"]
    assert stored and all(r["extra"]["model_source"]["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
                          for r in stored)


def test_distill_teacher_and_student_weights(trained, capsys, home):
    path, data = trained
    rows = _cli(capsys, "distill", "--teacher", "torchvision:resnet18", "--teacher-weights", str(path),
                "--student", "torchvision:resnet18", "--student-weights", str(path), "--normalize", "none",
                "--dataset", data, "--epochs", "1", "--alpha", "0.5", "--no-baseline", "--lr", "1e-5", "--quiet")
    # a student that starts from the same trained weights (lr tiny) stays near 1.0; from scratch it could not
    assert rows[0]["accuracy"] >= 0.9
    assert rows[0]["baseline"]["accuracy"] == 1.0  # the teacher is the user's model


def test_teacher_weights_count_must_match(trained, capsys):
    from compression.cli import main
    assert main(["distill", "--teacher", "cnn,mlp", "--teacher-weights", str(trained[0]), "--no-store"]) == 2
    assert "--teacher-weights has 1 file(s) for 2 teacher(s)" in capsys.readouterr().err


def test_wrong_normalization_is_named(trained, capsys, home):
    """Weights trained on [0, 1] pixels, read with a normalization that saturates every input: the
    answer is near chance, and the result says the normalization is the likely cause."""
    path, data = trained
    from compression.evaluate import evaluate
    bad = evaluate("torchvision:resnet18", dataset=data, weights=path, mean="0.99,0.99,0.99", std="0.001,0.001,0.001")
    assert bad.metrics.accuracy <= 1 / 3 + 0.05
    assert "--normalize" in bad.extra["warning"] and "mean 0.99" in bad.extra["warning"]
    good = evaluate("torchvision:resnet18", dataset=data, weights=path, normalize="none")
    assert "warning" not in good.extra


def test_named_model_from_the_cli_everywhere(trained, capsys, home):
    path, data = trained
    card = _cli(capsys, "models", "add", "colours", "--model", "torchvision:resnet18", "--weights", str(path),
                "--normalize", "none", "--dataset", data)[0]
    assert card["test_accuracy"] == 1.0 and card["source"] == "uploaded" and card["reference"] == "torchvision:resnet18"
    assert card["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["input_contract"]["mean"] == [0.0, 0.0, 0.0] and card["accuracy_interval"][1] == 1.0
    assert any(r["name"] == "colours" for r in _cli(capsys, "models", "list"))
    q = _cli(capsys, "quantize", "--model", "colours", "--bits", "8")[0]  # the named model, its contract
    assert q["baseline"]["accuracy"] == 1.0 and q["dataset"] == data
    _cli(capsys, "models", "remove", "colours")
    from compression.store import RunStore
    assert any(r["model"] == "colours" for r in RunStore().runs())  # its runs stay
    from compression.cli import main
    assert main(["evaluate", "--model", "colours"]) == 2


def test_named_model_in_the_sidebar(trained, home):
    from streamlit.testing.v1 import AppTest

    from compression.models.named import add_named_model
    from compression.paths import REPO_ROOT
    path, data = trained
    add_named_model("colours-app", "torchvision:resnet18", weights=path, dataset=data, normalize="none")
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "0_Home.py"), default_timeout=180)
    at.session_state["keep_sidebar_dataset"] = data
    at.session_state["keep_sidebar_model"] = "colours-app"
    at.run()
    assert not at.exception
    picker = at.sidebar.selectbox(key="sidebar_model")
    assert picker.value == "colours-app" and "colours-app" in picker.options
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == "100.00 %"
    assert any("Input contract: 3 x 32 x 32, mean 0/0/0, std 1/1/1" in c.value for c in at.caption)


def test_run_reference_continues_a_stored_run(trained, capsys, home):
    path, data = trained
    pruned = _cli(capsys, "prune", "--model", "torchvision:resnet18", "--weights", str(path), "--normalize", "none",
                  "--dataset", data, "--method", "structured", "--ratio", "0.25")[0]
    q = _cli(capsys, "quantize", "--model", f"run:{pruned['run_id']}", "--bits", "8")[0]
    assert q["baseline"]["macs"] == pruned["macs"] and q["baseline"]["params"] == pruned["params"]
    assert q["dataset"] == data and q["model_source"]["contract"]["std"] == [1.0, 1.0, 1.0]  # its contract came along
    from compression.store import RunStore
    assert RunStore().get(q["run_id"])["parent_id"] == pruned["run_id"]
    from compression.cli import main
    assert main(["quantize", "--model", "run:999999"]) == 2
    assert "no stored run 999999" in capsys.readouterr().err


def test_contract_belongs_to_the_model(trained):
    from compression.contract import IMAGENET_MEAN
    from compression.refs import resolve
    path, data = trained
    tv = resolve("torchvision:resnet18", data)
    assert tuple(tv.contract.mean) == IMAGENET_MEAN and tv.dataset.mean == IMAGENET_MEAN  # the view feeds it that
    big = resolve("torchvision:resnet18", data, input_size=48)
    assert big.dataset.input_shape == (3, 48, 48) and big.contract.input_size == (48, 48)
    x, _ = next(big.dataset.batches("test", 4))
    assert tuple(x.shape) == (4, 3, 48, 48)
    assert big.architecture["contract"]["input_size"] == [48, 48]  # what an artifact header records
    zoo = resolve("cnn")
    assert zoo.dataset is zoo.dataset.raw if hasattr(zoo.dataset, "raw") else True
    assert zoo.contract.mean == zoo.dataset.mean and zoo.contract.source == "zoo card"
    with pytest.raises(CompressionError, match="normalize 'bogus'"):
        resolve("torchvision:resnet18", data, normalize="bogus")


def test_published_weights_fine_tuned_from_the_torch_cache(folder, monkeypatch, tmp_path, home):
    """Published weights planted under the torch cache's file name; the classifier is replaced for
    the folder's 3 classes and fine-tuned, with progress and a time-left estimate, recipe on the card."""
    import torchvision
    from compression.models.named import add_named_model
    from compression.torchvision_models import published_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    target = published_file("torchvision:resnet18")
    assert target.name == "resnet18-f37072fd.pth"
    with pytest.raises(CompressionError, match=r"resnet18-f37072fd\.pth not found in .*torch/hub/checkpoints"):
        add_named_model("tv-ft", "torchvision:resnet18", dataset=f"imagefolder:{folder}", pretrained=True,
                        finetune_epochs=1)
    target.parent.mkdir(parents=True)
    torch.manual_seed(5)
    planted = torchvision.models.resnet18().state_dict()  # 1000 ImageNet classes
    torch.save(planted, target)
    events = []
    card = add_named_model("tv-ft", "torchvision:resnet18", dataset=f"imagefolder:{folder}", pretrained=True,
                           finetune_epochs=2, progress=events.append)
    assert card["source"] == "fine-tuned from published weights" and card["recipe"]["epochs"] == 2
    ft = [e for e in events if e.get("stage") == "fine-tuning"]
    assert [e["epoch"] for e in ft] == [1, 2] and ft[-1]["eta_s"] == 0 and ft[0]["eta_s"] > 0
    from compression.models import load_pretrained
    kept = load_pretrained("tv-ft").state_dict()
    assert kept["fc.weight"].shape == (3, 512)  # the classifier replaced for the folder's classes
    assert not torch.equal(kept["conv1.weight"], planted["conv1.weight"])  # fine-tuned from the planted ones
    assert card["input_contract"]["mean"] == [0.485, 0.456, 0.406]


def test_home_upload_for_a_torchvision_architecture(trained, home):
    """'Bring your own model' on the home page: torchvision family, the architecture picked from the
    list, the user's file and its normalization; evaluated, kept, selected in the sidebar."""
    from streamlit.testing.v1 import AppTest

    from compression.paths import REPO_ROOT
    path, data = trained
    at = AppTest.from_file(str(REPO_ROOT / "pages" / "0_Home.py"), default_timeout=300)
    at.session_state["keep_sidebar_dataset"] = data
    at.run()
    at.radio(key="home_byo_family").set_value("torchvision").run()
    assert "torchvision:resnext50_32x4d" in at.selectbox(key="home_byo_base").options  # every architecture
    at.selectbox(key="home_byo_base").set_value("torchvision:resnet18")
    at.file_uploader(key="home_byo_file").set_value(("colours.pt", path.read_bytes(), "application/octet-stream"))
    at.selectbox(key="home_byo_norm").set_value("none (pixels in [0, 1])")
    at.text_input(key="home_byo_name").set_value("colours-home")
    at.run()
    at.button(key="home_byo_go").click().run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="sidebar_model").value == "colours-home"
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == "100.00 %"


def test_structured_fine_tuning_of_a_small_folder_uses_train_and_fresh_batchnorm(trained, capsys, home):
    """The defaults a user gets: 60 training images leave a val split of 6, so "auto" fine-tunes on
    train (monitored on val) and the BatchNorm statistics are re-estimated after pruning; the stored
    config says both, and the pruned ResNet-18 still tells solid colours apart (chance is 1/3)."""
    path, data = trained
    ref = ["--model", "torchvision:resnet18", "--weights", str(path), "--normalize", "none", "--dataset", data]
    r = _cli(capsys, "prune", *ref, "--method", "structured", "--ratio", "0.5", "--finetune-epochs", "1")[0]
    assert r["config"]["finetune_split"] == "train" and r["config"]["finetune_recalibrate_bn"] is True
    assert [h["monitor"] for h in r["history"]] == ["val[:2000]"] * 2
    assert r["accuracy"] >= 0.9
    off = _cli(capsys, "prune", *ref, "--method", "structured", "--ratio", "0.5", "--finetune-epochs", "1",
               "--finetune-split", "val", "--no-recalibrate-bn")[0]
    assert off["config"]["finetune_split"] == "val" and off["config"]["finetune_recalibrate_bn"] is False
    from compression.store import RunStore
    store = RunStore()
    assert store.get(r["run_id"])["config"]["finetune_split"] == "train"
    assert store.get(off["run_id"])["config"]["finetune_recalibrate_bn"] is False


def test_prune_help_states_the_fine_tuning_defaults(capsys):
    from compression.cli import main
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "auto (default): val when it holds 5,000 images" in text and "--no-recalibrate-bn" in text
