"""Bring your own weights: never unpickle code, say what was wrong, then use it like a zoo model."""

import io
import pickle
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from safetensors.torch import save as save_safetensors

from compression import CompressionError
from compression.weights import read_weights


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class CreatesAFile:
    """Unpickling this would create a file (the classic malicious-pickle payload)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    for blob in (_torch_bytes({"w": CreatesAFile(str(target))}), pickle.dumps(CreatesAFile(str(target)))):
        with pytest.raises(CompressionError, match="pickled object"):
            read_weights(blob, "evil.pt")
    assert not target.exists()


def test_whole_pickled_model_is_refused_with_advice():
    blob = _torch_bytes(torch.nn.Linear(3, 2))
    with pytest.raises(CompressionError, match=r"pickled object \(torch\.nn\.modules\.linear\.Linear\).*state_dict"):
        read_weights(blob, "model.pt")


def test_state_dict_and_safetensors_load():
    sd = torch.nn.Linear(3, 2).state_dict()
    for blob, name in ((_torch_bytes(sd), "w.pt"), (save_safetensors(dict(sd)), "w.safetensors"),
                       (_torch_bytes({"state_dict": sd, "epoch": 3}), "ckpt.pth")):
        got = read_weights(blob, name)
        assert set(got) == {"weight", "bias"} and torch.equal(got["weight"], sd["weight"])


@pytest.mark.parametrize("blob, name, message", [
    (b"", "empty.pt", "empty"),
    (b"hello", "notes.txt", "unsupported file type '.txt'"),
    (_torch_bytes(torch.nn.Linear(3, 2).state_dict())[:300], "cut.pt", "truncated or corrupt"),
    (_torch_bytes([1, 2, 3]), "list.pt", "found a list"),
    (_torch_bytes({"weight": torch.ones(2), "lr": 0.1}), "mixed.pt", "entry 'lr' is float"),
    (b"\x00" * 64, "zeros.safetensors", "not a valid .safetensors"),
])
def test_bad_files_get_their_own_message(blob, name, message):
    with pytest.raises(CompressionError, match=message):
        read_weights(blob, name)


def test_size_limit_is_stated(monkeypatch):
    import compression.weights as w
    monkeypatch.setattr(w, "MAX_WEIGHTS_BYTES", 1024)
    with pytest.raises(CompressionError, match="over the 0 MiB limit|over the .* limit"):
        read_weights(b"x" * 2048, "big.pt")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=st.binary(min_size=0, max_size=2048), suffix=st.sampled_from([".pt", ".pth", ".safetensors", ".bin"]))
def test_random_bytes_never_crash(blob, suffix):
    try:
        state = read_weights(blob, f"fuzz{suffix}")
    except CompressionError as exc:  # in words: no Python exception names for the user to decode
        assert not re.search(r"\b[A-Z]\w*(Error|Exception)\b", str(exc)), str(exc)
        return
    assert all(isinstance(v, torch.Tensor) for v in state.values())


VALID = _torch_bytes(torch.nn.Linear(4, 3).state_dict())


@settings(max_examples=150, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_garbled_checkpoint_never_crashes(flips):
    blob = bytearray(VALID)
    for pos, xor in flips:
        blob[pos] ^= xor
    try:
        state = read_weights(bytes(blob), "garbled.pt")
    except CompressionError:
        return
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # damage hit tensor bytes only


def test_user_model_becomes_a_zoo_model(home, fmnist):
    from compression.evaluate import add_user_model, evaluate
    from compression.models import load_pretrained, zoo_names
    sd = load_pretrained("mlp").state_dict()
    card = add_user_model("mlp", save_safetensors({k: v.contiguous() for k, v in sd.items()}),
                          name="my-mlp", filename="mine.safetensors")
    assert "my-mlp" in zoo_names() and card["base"] == "mlp"
    assert card["test_accuracy"] == pytest.approx(0.8980, abs=1e-4)  # same weights as the zoo mlp
    assert torch.equal(load_pretrained("my-mlp").state_dict()["1.weight"], sd["1.weight"])
    assert evaluate("my-mlp", limit=100).model == "my-mlp"


def test_user_model_for_the_wrong_architecture_lists_keys(home):
    from compression.evaluate import add_user_model
    from compression.models import build_model
    blob = _torch_bytes(build_model("lenet5").state_dict())
    with pytest.raises(CompressionError, match=r"missing: 1\.weight.*unexpected: 0\.weight"):
        add_user_model("mlp", blob, name="oops", filename="lenet.pt")
    with pytest.raises(CompressionError, match="shape mismatch"):
        add_user_model("mlp", _torch_bytes(build_model("mlp", width=0.5).state_dict()), name="x", filename="half.pt")


def test_zoo_names_cannot_be_taken(home):
    from compression.evaluate import add_user_model
    from compression.models import load_pretrained
    with pytest.raises(CompressionError, match="taken by the zoo"):
        add_user_model("mlp", _torch_bytes(load_pretrained("mlp").state_dict()), name="cnn", filename="a.pt")


def test_two_sessions_adding_the_same_name_at_once_leave_one_whole_model(home):
    """Each add writes its own temp files: with one shared temp name, the second os.replace could
    find the file gone (an error for that user) or move the other upload's half-written bytes."""
    import threading

    from compression.evaluate import add_user_model
    from compression.models import load_pretrained, user_models_dir
    sd = load_pretrained("mlp").state_dict()
    blobs = [_torch_bytes({k: v * (1 + i) for k, v in sd.items()}) for i in range(2)]
    cards, errors = [], []

    def add(i):
        try:
            cards.append(add_user_model("mlp", blobs[i], name="shared", filename=f"s{i}.pt"))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)
    threads = [threading.Thread(target=add, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cards) == 2
    assert not [p.name for p in user_models_dir().iterdir() if ".tmp" in p.name]
    weights = load_pretrained("shared").state_dict()["1.weight"]
    assert any(torch.equal(weights, sd["1.weight"] * (1 + j)) for j in range(2))  # one upload's, whole
