"""The mask network's building blocks against their reference PyTorch layers."""
import re
from pathlib import Path

import pytest
import torch

from lass.models.band_split import BandSplitTCN, default_band_widths
from lass.models.film_tcn import DilatedDepthwise, FiLMBlock, FiLMTCN


@pytest.mark.parametrize("kernel,dilation", [(3, 1), (3, 8), (5, 2)])
def test_time_major_depthwise_equals_conv1d(kernel, dilation):
    torch.manual_seed(0)
    layer = DilatedDepthwise(16, kernel, dilation)
    conv = torch.nn.Conv1d(16, 16, kernel, padding=layer.context, dilation=dilation, groups=16)
    conv.load_state_dict(layer.state_dict())  # same parameter names and shapes
    x = torch.randn(2, 16, 37)
    expected = conv(x)
    got = layer(x.transpose(1, 2)).transpose(1, 2)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("front,refiner,expected", [((), (), 7), ((4, 4), (), 9), ((), (4,), 9), ((4,), (4, 4), 11)])
def test_receptive_field_is_exact(front, refiner, expected):
    """Perturbing one frame changes the mask exactly within receptive_field frames of it (each 3x3
    convolution of the optional 2-D front end or mask refiner adds one frame)."""
    torch.manual_seed(0)
    net = FiLMTCN(n_bins=33, cond_dim=8, channels=16, hidden=24, cond_hidden=8, dilations=(1, 2, 4),
                  repeats=1, front_channels=front, refiner_channels=refiner).eval()
    for p in net.parameters():  # zero-initialised layers would hide the dependence
        torch.nn.init.normal_(p, std=0.3)
    mag = torch.rand(1, 33, 61) + 0.1
    cond = torch.randn(1, 8)
    bumped = mag.clone()
    bumped[..., 30] *= 3
    with torch.no_grad():
        changed = (net(mag, cond) - net(bumped, cond)).abs().amax(dim=(0, 1)) > 0
    frames = torch.nonzero(changed).flatten()
    rf = net.receptive_field
    assert rf == expected
    assert frames.min().item() == 30 - rf and frames.max().item() == 30 + rf


@pytest.mark.parametrize("stride,tail,shared,refiner,pool", [(1, (), 0, (), False), (4, (1,), 0, (), False),
                                                             (1, (), 1, (), False), (1, (), 1, (4,), False),
                                                             (4, (), 0, (4,), False), (1, (), 1, (4,), True)])
def test_one_encoding_serves_many_queries(stride, tail, shared, refiner, pool):
    """A mixture encoded once and decoded for several queries gives each query's own mask."""
    torch.manual_seed(0)
    net = FiLMTCN(n_bins=33, cond_dim=8, channels=16, hidden=24, cond_hidden=8, dilations=(1, 2), repeats=1,
                  time_stride=stride, tail_dilations=tail, shared_blocks=shared, refiner_channels=refiner,
                  query_pool=pool).eval()
    for p in net.parameters():  # zero-initialised FiLM layers would make every query's mask the same
        torch.nn.init.normal_(p, std=0.3)
    mag, conds = torch.rand(1, 33, 21) + 0.1, torch.randn(3, 8)
    with torch.no_grad():
        shared = net.decode(net.encode_mixture(mag), conds)
        one_by_one = torch.cat([net(mag, c[None]) for c in conds])
    assert shared.shape == (3, 33, 21)
    assert torch.allclose(shared, one_by_one, atol=1e-6)
    assert not torch.allclose(shared[0], shared[1])


SMALL_POOLED_TCN = dict(n_bins=33, cond_dim=8, channels=16, hidden=24, cond_hidden=8, dilations=(1, 2), repeats=2,
                        shared_blocks=2)


def _plain_loaded_into_extended(extra: dict, new_prefix: str):
    """A small FiLM-TCN with random weights, loaded into the same network with an `extra` option whose new
    weights (all under `new_prefix`) start as the identity: both give the same masks. Returns both, a batch
    of 2 mixtures of 61 frames and 4 conditions (2 per mixture)."""
    torch.manual_seed(0)
    plain, extended = FiLMTCN(**SMALL_POOLED_TCN).eval(), FiLMTCN(**SMALL_POOLED_TCN, **extra).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.3)
    missing = extended.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(key.startswith(new_prefix) for key in missing)
    mag, conds = torch.rand(2, 33, 61) + 0.1, torch.randn(4, 8)
    with torch.no_grad():
        assert torch.allclose(extended(mag, conds), plain(mag, conds), atol=1e-6)
    return plain, extended, mag, conds


def test_query_pool_starts_as_identity_then_reads_the_whole_segment():
    """query_pool adds nothing until trained (its output layer starts at zero: a model without it loads
    into it unchanged); once trained, a frame far outside the convolutions' receptive field changes the
    mask through the pooled condition, and each query of a batch still gets its own."""
    plain, pooled, mag, conds = _plain_loaded_into_extended(dict(query_pool=True), "query_pool.")
    with torch.no_grad():
        torch.nn.init.normal_(pooled.query_pool.out.weight, std=0.3)
        bumped = mag.clone()
        bumped[..., 60] *= 3  # 60 frames from frame 0, against a receptive field of 6
        assert pooled.receptive_field == 6
        assert not torch.allclose(pooled(mag, conds)[..., 0], pooled(bumped, conds)[..., 0])
        assert torch.allclose(plain(mag, conds)[..., 0], plain(bumped, conds)[..., 0])
        alone = torch.cat([pooled(mag[i // 2][None], conds[i][None]) for i in range(4)])
        assert torch.allclose(pooled(mag, conds), alone, atol=1e-6)


@pytest.mark.parametrize("after", [(2,), (3,), (2, 3)])
def test_attention_starts_as_identity_then_reads_the_whole_segment(after):
    """attention_after adds nothing until trained (zero output layers: a model without it loads into it
    unchanged); once trained, a frame far outside the convolutions' receptive field changes the mask, one
    encoding still serves many queries, and positions outside the blocks, heads that do not divide the
    channels and time striding are refused."""
    plain, attending, mag, conds = _plain_loaded_into_extended(dict(attention_after=after, attention_heads=2),
                                                               "attention.")
    with torch.no_grad():
        for layer in attending.attention.values():
            torch.nn.init.normal_(layer.out.weight, std=0.3)
        bumped = mag.clone()
        bumped[..., 60] *= 3  # 60 frames from frame 0, against a receptive field of 6
        assert attending.receptive_field == 6
        assert not torch.allclose(attending(mag, conds)[..., 0], attending(bumped, conds)[..., 0])
        assert torch.allclose(plain(mag, conds)[..., 0], plain(bumped, conds)[..., 0])
        shared = attending.decode(attending.encode_mixture(mag), conds)
        alone = torch.cat([attending(mag[i // 2][None], conds[i][None]) for i in range(4)])
        assert torch.allclose(shared, alone, atol=1e-5)
    for bad in ((0,), (2, 5)):
        with pytest.raises(ValueError, match=re.escape(f"attention_after is {list(bad)}: each must be in 1..4")):
            FiLMTCN(**SMALL_POOLED_TCN, attention_after=bad)
    assert list(FiLMTCN(**SMALL_POOLED_TCN, attention_after=3).attention) == ["3"]  # `attention_after: 3` in YAML
    assert list(FiLMTCN(**SMALL_POOLED_TCN, attention_after="4").attention) == ["4"]  # not one layer per character
    with pytest.raises(ValueError, match=re.escape("attention_after is ['12']: each must be in 1..4")):
        FiLMTCN(**SMALL_POOLED_TCN, attention_after="12")
    with pytest.raises(ValueError, match="must divide channels"):
        FiLMTCN(**SMALL_POOLED_TCN, attention_after=(1,), attention_heads=3)
    strided = {**SMALL_POOLED_TCN, "shared_blocks": 0, "time_stride": 2}
    with pytest.raises(ValueError, match="attention_after needs time_stride 1 and no tail blocks"):
        FiLMTCN(**strided, attention_after=(1,))


def test_shared_trunk_batches_several_queries_per_mixture():
    """With a query-independent trunk, B mixtures with k queries each (training's layout: mixture b's
    queries in rows b*k..b*k+k-1) give the masks of decoding each pair alone; the trunk has no FiLM
    layers, it keeps the receptive field, and bad settings are refused."""
    torch.manual_seed(0)
    args = dict(n_bins=33, cond_dim=8, channels=16, hidden=24, cond_hidden=8, dilations=(1, 2, 4), repeats=1)
    net = FiLMTCN(**args, shared_blocks=2).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert len(net.trunk) == 2 and len(net.blocks) == 1
    assert all(block.film is None for block in net.trunk) and net.blocks[0].film is not None
    assert net.receptive_field == FiLMTCN(**args).receptive_field == 7
    mags, conds = torch.rand(2, 33, 21) + 0.1, torch.randn(6, 8)
    with torch.no_grad():
        batched = net(mags, conds)
        alone = torch.cat([net(mags[i // 3][None], conds[i][None]) for i in range(6)])
    assert batched.shape == (6, 33, 21)
    assert torch.allclose(batched, alone, atol=1e-6)
    with pytest.raises(ValueError, match="do not divide"):
        net(mags, conds[:5])
    with pytest.raises(ValueError, match="shared_blocks"):
        FiLMTCN(**args, shared_blocks=3)
    with pytest.raises(ValueError, match="time_stride 1"):
        FiLMTCN(**args, shared_blocks=1, time_stride=2)


def test_separator_pairs_each_query_with_its_own_mixture():
    """Training's forward pass with k queries per mixture: estimate b*k+j is mixture b separated by
    its query j, the same as separating that pair alone."""
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator

    torch.manual_seed(0)
    model = MaskSeparator(ModelConfig(n_fft=64, hop_length=16, query_dim=4, network_args=dict(
        channels=16, hidden=24, cond_hidden=8, dilations=(1, 2), repeats=1, shared_blocks=1))).eval()
    for p in model.network.parameters():
        torch.nn.init.normal_(p, std=0.3)
    mixtures, conds = torch.randn(2, 800), torch.randn(4, 8)
    with torch.no_grad():
        batched = model(mixtures, conds)
        alone = torch.cat([model(mixtures[i // 2][None], conds[i][None]) for i in range(4)])
    assert batched.shape == (4, 800)
    assert torch.allclose(batched, alone, atol=1e-5)
    assert not torch.allclose(batched[0], batched[2], atol=1e-3)  # the rows differ: the check can fail


@pytest.mark.parametrize("position", [28, 29, 30, 31])
def test_time_strided_receptive_field_is_a_tight_bound(position):
    """With frames grouped by time_stride, one frame's influence stays within receptive_field frames
    and reaches its edge for some alignment; the output keeps the input's frame count."""
    torch.manual_seed(0)
    net = FiLMTCN(n_bins=33, cond_dim=8, channels=16, hidden=24, cond_hidden=8, dilations=(1, 2), repeats=1,
                  time_stride=4, tail_dilations=(1,)).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    rf = net.receptive_field
    assert rf == 4 * 3 + 3 + 1
    mag = torch.rand(1, 33, 63) + 0.1  # not a multiple of the stride
    cond = torch.randn(1, 8)
    bumped = mag.clone()
    bumped[..., position] *= 3
    with torch.no_grad():
        out = net(mag, cond)
        changed = (out - net(bumped, cond)).abs().amax(dim=(0, 1)) > 0
    assert out.shape == (1, 33, 63)
    frames = torch.nonzero(changed).flatten()
    assert frames.min().item() >= position - rf and frames.max().item() <= position + rf
    group = position // 4 * 4  # the group holding `position` spans [group, group + 3]
    assert frames.min().item() == group - 4 * 3 - 1 and frames.max().item() == group + 3 + 4 * 3 + 1


def test_time_stride_must_be_positive():
    with pytest.raises(ValueError, match="time_stride"):
        FiLMTCN(n_bins=33, cond_dim=8, time_stride=0)


def _band_net():
    torch.manual_seed(0)
    net = BandSplitTCN(n_bins=33, cond_dim=8, band_dim=6, hidden=10, cond_hidden=8, dilations=(1, 2, 4),
                       head_hidden=5, band_widths=(4, 4, 8, 17)).eval()
    for p in net.parameters():  # zero-initialised layers would hide the dependence
        torch.nn.init.normal_(p, std=0.3)
    return net.double()  # float32 rounds the smallest edge effects away


def test_band_split_receptive_field_is_exact():
    net, mag, cond = _band_net(), torch.rand(1, 33, 61).double() + 0.1, torch.randn(1, 8).double()
    bumped = mag.clone()
    bumped[..., 30] *= 3
    with torch.no_grad():
        changed = (net(mag, cond) - net(bumped, cond)).abs().amax(dim=(0, 1)) > 0
    frames = torch.nonzero(changed).flatten()
    assert net.receptive_field == 7
    assert frames.min().item() == 30 - 7 and frames.max().item() == 30 + 7


def test_band_split_mixes_bands_and_serves_many_queries():
    """A change in the lowest band reaches the mask of the highest one (the band mixers), and a
    mixture encoded once gives each query its own mask."""
    net, mag, conds = _band_net(), torch.rand(1, 33, 21).double() + 0.1, torch.randn(3, 8).double()
    bumped = mag.clone()
    bumped[:, :4] *= 3
    with torch.no_grad():
        shared = net.decode(net.encode_mixture(mag), conds)
        one_by_one = torch.cat([net(mag, c[None]) for c in conds])
        top_band_change = (net(mag, conds[:1]) - net(bumped, conds[:1]))[:, 16:].abs().max()
    assert shared.shape == (3, 33, 21) and 0 <= shared.min() and shared.max() <= 1
    assert torch.allclose(shared, one_by_one, atol=1e-6)
    assert not torch.allclose(shared[0], shared[1])
    assert top_band_change > 1e-4


def test_default_bands_tile_the_spectrum():
    widths = default_band_widths(513)
    assert sum(widths) == 513 and widths[0] == 8 and widths[-1] == 33 and len(widths) == 32
    assert sum(default_band_widths(257)) == 257
    with pytest.raises(ValueError, match="sum to 33"):
        BandSplitTCN(n_bins=33, cond_dim=8, band_widths=(8, 8))


def test_drop_path_skips_whole_blocks_per_example_only_while_training():
    """Stochastic depth: in training a block either runs (its update scaled by 1 / (1 - p)) or is the
    identity, independently per example; in eval mode it is the plain block, so inference never skips."""
    torch.manual_seed(0)
    block = FiLMBlock(16, 24, 8, 3, 1, drop_path=0.5)
    for p in block.parameters():  # the zero-initialised output layer would make the block the identity
        torch.nn.init.normal_(p, std=0.3)
    x, cond = torch.randn(64, 11, 16), torch.randn(64, 8)
    with torch.no_grad():
        full = block.eval()(x, cond)
        assert torch.equal(full, block(x, cond))  # eval mode is deterministic
        trained = block.train()(x, cond)
    skipped = (trained - x).abs().amax(dim=(1, 2)) == 0
    kept = torch.isclose(trained - x, (full - x) * 2, atol=1e-5).all(dim=(1, 2))
    assert (skipped | kept).all()  # every example is one or the other, never a partial block
    assert 12 <= skipped.sum() <= 52  # about half of 64 examples (p = 0.5), not all or none
    net = FiLMTCN(n_bins=33, cond_dim=8, channels=16, hidden=24, cond_hidden=8, dilations=(1, 2), repeats=2,
                  shared_blocks=1, tail_dilations=(1,), drop_path=0.3)
    rates = [b.drop_path for b in (*net.trunk, *net.blocks, *net.tail)]
    assert rates == pytest.approx([0.0, 0.075, 0.15, 0.225, 0.3])  # rising with depth, the last at drop_path
    with pytest.raises(ValueError, match="drop_path"):
        FiLMBlock(16, 24, 8, 3, 1, drop_path=1.0)


def test_mask_max_scales_the_mask_and_lets_the_separator_amplify():
    """mask_max 2: the same weights give twice the [0, 1] network's mask, so a bin can be raised above the
    mixture; the engine still never raises content above the model's band (its high-band gain stays <= 1)."""
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator

    args = dict(channels=16, hidden=24, cond_hidden=8, dilations=(1, 2), repeats=1)
    torch.manual_seed(0)
    unit = FiLMTCN(n_bins=33, cond_dim=8, **args).eval()
    double = FiLMTCN(n_bins=33, cond_dim=8, mask_max=2.0, **args).eval()
    double.load_state_dict(unit.state_dict())
    magnitude, cond = torch.rand(2, 33, 20) + 0.1, torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(double(magnitude, cond), 2 * unit(magnitude, cond))

    model = MaskSeparator(ModelConfig(n_fft=64, hop_length=16, query_dim=4, mask_power=1.0,
                                      network_args=dict(mask_max=2.0, **args))).eval()
    torch.nn.init.zeros_(model.network.output_proj.weight)
    torch.nn.init.constant_(model.network.output_proj.bias, 12.0)  # sigmoid ~ 1: every mask ~ mask_max
    mixture = torch.randn(1, 1600)
    with torch.no_grad():
        estimate, high_band_gain = model.separate_many(mixture, torch.randn(1, 8))
    assert torch.allclose(estimate[0], 2 * mixture, atol=1e-3)
    assert torch.allclose(high_band_gain, torch.ones_like(high_band_gain))
    with pytest.raises(ValueError, match="mask_max"):
        FiLMTCN(n_bins=33, cond_dim=8, mask_max=0.0, **args)


def test_a_model_file_that_cannot_be_written_is_one_clear_error(tmp_path, monkeypatch):
    """lass export and lass train end in save_model: a folder that cannot be made (a file in the way, no
    permission, a full disk) is an OutputError naming the file, not safetensors' or the OS's traceback."""
    from lass.audio import OutputError
    from lass.models.config import ModelConfig
    from lass.models.registry import save_model
    from lass.models.separator import MaskSeparator

    (tmp_path / "afile").write_text("in the way")
    model = MaskSeparator(ModelConfig(name="c", network="constant", network_args={"value": 0.5}))
    with pytest.raises(OutputError, match=f"cannot write the model file {tmp_path / 'afile' / 'm.safetensors'}"):
        save_model(model, tmp_path / "afile" / "m.safetensors")
    assert save_model(model, tmp_path / "ok" / "m.safetensors").is_file()
    assert not list(tmp_path.rglob("*.part"))
    # Ctrl-C while the file is written: the earlier model stays whole and no temporary is left behind
    import safetensors.torch

    def interrupted(state, name, metadata=None):
        Path(name).write_bytes(b"half a model")
        raise KeyboardInterrupt

    before = (tmp_path / "ok" / "m.safetensors").read_bytes()
    monkeypatch.setattr(safetensors.torch, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, tmp_path / "ok" / "m.safetensors")
    assert (tmp_path / "ok" / "m.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["m.safetensors"]


def test_a_model_file_keeps_the_training_phrasings_for_query_anchoring(tmp_path):
    """The embeddings the model was trained on travel in its file (half precision), beside the weights, and a
    file with none (one written before query anchoring) loads with none, so its queries go in as given."""
    from safetensors.torch import load_file, save_file

    from lass.models.config import ModelConfig
    from lass.models.registry import VOCABULARY_KEY, ModelNotFound, describe, load_model_file, save_model
    from lass.models.separator import MaskSeparator

    model = MaskSeparator(ModelConfig(name="v", network="constant", network_args={"value": 0.5}, query_dim=8,
                                      query_anchor=0.5))
    vocabulary = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    model.vocabulary = vocabulary
    assert VOCABULARY_KEY not in model.state_dict()  # not a weight: a checkpoint's state_dict is unchanged by it
    path = save_model(model, tmp_path / "v.safetensors")
    again = load_model_file(path)
    assert again.config.query_anchor == 0.5 and again.vocabulary.dtype == torch.float32
    assert torch.allclose(again.vocabulary, vocabulary, atol=1e-3)
    # not counted as parameters by `lass models`
    assert describe("v", path).parameters == sum(v.numel() for v in model.state_dict().values())
    state = load_file(str(path))
    del state[VOCABULARY_KEY]
    save_file(state, str(tmp_path / "old.safetensors"), metadata={"lass_config": model.config.to_json()})
    assert load_model_file(tmp_path / "old.safetensors").vocabulary is None
    state[VOCABULARY_KEY] = torch.zeros(5, 3, dtype=torch.float16)
    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"lass_config": model.config.to_json()})
    with pytest.raises(ModelNotFound, match=f"its {VOCABULARY_KEY} is \\(5, 3\\), not \\(N, 8\\)"):
        load_model_file(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="query_anchor must be a finite number >= 0"):
        model.set_query_anchor(-1.0)
