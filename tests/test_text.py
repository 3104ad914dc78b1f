"""The prompt tokenizer, the text encoder, and contrastive pre-training."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from genlab.data.conditions import paired_digits
from genlab.errors import ConfigError, DataError, ShapeError
from genlab.nn.text import ImageEncoder, TextEncoder, Tokenizer, contrastive_pretrain, info_nce


def test_round_trip_of_every_generated_prompt():
    tok = Tokenizer()
    data = paired_digits("all", ("prompt",))
    for prompts in (data.conditions["prompt"], data.subset(torch.arange(300)).prompts(1)):
        ids, mask = tok.encode(prompts)
        assert ids.shape == mask.shape == (len(prompts), tok.max_length)
        assert tok.decode(ids, mask) == prompts
        assert not (ids[mask] == 1).any()  # no <unk>: prompt words are all in the vocabulary
        assert torch.equal(mask, ids != 0)


def test_tokenizer_errors_and_unknown_token():
    tok = Tokenizer(max_length=6)
    with pytest.raises(DataError, match="non-empty"):
        tok.encode("   ")
    with pytest.raises(DataError, match="at most 6 words"):
        tok.encode("a thin 3 leaning left and shifted left")
    with pytest.raises(DataError, match="'purple', 'cat'") as error:
        tok.encode(["a 3", "a purple cat purple"])
    assert "\n" not in str(error.value)
    with pytest.raises(DataError, match="Did you mean 'thin'"):
        tok.encode("a thinn 3")
    lenient = Tokenizer(max_length=6, unknown="token")
    ids, mask = lenient.encode("a purple 3")
    assert ids[0, :3].tolist() == [lenient.words.index("a"), 1, lenient.words.index("3")]
    assert lenient.decode(ids, mask) == ["a <unk> 3"]
    with pytest.raises(ConfigError):
        Tokenizer(unknown="ignore")
    with pytest.raises(ConfigError):
        Tokenizer(["a", "a"])
    assert Tokenizer(**tok.config()).words == tok.words


def test_encoder_shapes_padding_and_config():
    torch.manual_seed(0)
    encoder = TextEncoder(dim=16, depth=1, heads=2).eval()
    out = encoder.embed(["a thin upright 3", "seven"])
    assert out.tokens.shape == (2, 24, 16) and out.pooled.shape == (2, 16)
    assert out.mask.sum(1).tolist() == [4, 1]
    assert (out.tokens[~out.mask] == 0).all()
    # padding is ignored: the same prompt in a shorter padded length gives the same features
    ids, mask = encoder.tokenizer.encode(["a thin upright 3"])
    short = encoder(ids[:, :6], mask[:, :6])
    assert torch.allclose(short.pooled, out.pooled[:1], atol=1e-5)
    rebuilt = TextEncoder.from_config(encoder.config())
    assert rebuilt.config() == encoder.config()
    with pytest.raises(ShapeError):
        encoder(ids, mask[:, :5])
    with pytest.raises(ConfigError):
        TextEncoder(dim=10, heads=4)


def test_info_nce_of_matching_pairs_is_low():
    a = torch.eye(8)
    assert info_nce(a, a, temperature=0.05).item() < 1e-3
    # unrelated features: the loss of a uniform guess, log n, in expectation
    assert info_nce(a, torch.ones(8, 8)).item() == pytest.approx(math.log(8), rel=1e-5)


def test_contrastive_pretraining_retrieves_the_prompts_digit():
    train = paired_digits("train", ("prompt",))
    val = paired_digits("val", ("prompt",))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        text, images = TextEncoder(dim=32, depth=1, heads=2), ImageEncoder(dim=32, width=16)
    losses = contrastive_pretrain(text, images, train.x, [train.prompts(v) for v in range(2)],
                                  steps=80, batch_size=64,
                                  generator=torch.Generator().manual_seed(0))
    assert losses[-1] < losses[0]
    with torch.no_grad():
        t = F.normalize(text.embed(val.prompts(0)).pooled, dim=-1)  # (150, 32)
        i = F.normalize(images(val.x), dim=-1)
    hit = (val.y[(t @ i.T).argmax(1)] == val.y).double()  # top-1 image has the prompt's digit
    # by chance, query j hits with probability p_j = share of its digit among the 150 images
    p = torch.stack([(val.y == k).double().mean() for k in val.y])
    n = len(hit)
    chance, se = p.mean().item(), math.sqrt((p * (1 - p)).sum().item()) / n
    assert hit.mean().item() > chance + 5 * se  # chance ~ 0.10, 5 standard errors ~ 0.12
