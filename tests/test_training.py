import pytest
import torch

from compression import CompressionError
from compression.models import build_model, state_dict_hash
from compression.training import TrainConfig, accuracy_on, fit


def test_fit_trains_a_copy_and_learns(fmnist):
    torch.manual_seed(0)
    model = build_model("mlp")
    before = state_dict_hash(model)
    result = fit(model, fmnist, TrainConfig(epochs=1, subset=3000, eval_split="val"))
    assert state_dict_hash(model) == before  # input untouched
    assert result.model is not model
    # 10 classes: chance is 10 %; one epoch on 3k images must do far better
    assert result.history[0]["val_accuracy"] > 0.6
    assert accuracy_on(result.model, fmnist, "test", limit=1000) > 0.6


def test_stop_keeps_what_was_done(fmnist):
    calls = {"n": 0}

    def stop_after_two_epochs():
        calls["n"] += 1
        return calls["n"] > 2 * 8  # 1000 images / 128 per batch = 8 batches per epoch

    result = fit(build_model("mlp"), fmnist, TrainConfig(epochs=5, subset=1000),
                 should_stop=stop_after_two_epochs)
    assert result.stopped and [h["epoch"] for h in result.history] == [1, 2]


@pytest.mark.parametrize("kwargs, bad", [({"epochs": -1}, "-1"), ({"lr": 0}, "0"),
                                         ({"optimizer": "lbfgs"}, "lbfgs"), ({"subset": 0}, "0")])
def test_bad_config_is_named(kwargs, bad):
    with pytest.raises(CompressionError, match=bad):
        TrainConfig(**kwargs)


def test_augmentation_keeps_shape_and_content(fmnist):
    from compression.training import augment_batch
    x = fmnist.train.images[:64]
    y = augment_batch(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    x, y = x.float(), y.float()
    # a shift of <= 2 px and a flip keep most of the ink: sums differ by the cropped border only
    assert torch.allclose(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.25)
