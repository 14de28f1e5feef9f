"""Per-coordinate masks: counts, ordering, random tie-breaks; attribution mass shares."""

import torch

from attrib.evaluate.masking import apply_mask, keep_mask, mass_share, n_kept, random_attributions


def test_top_and_bottom_keep_the_right_coordinates():
    a = torch.randn(5, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    n = n_kept(0.25, 32)
    top, bottom = keep_mask(a, 0.25, "top", 0), keep_mask(a, 0.25, "bottom", 0)
    assert top.shape == a.shape and top.flatten(1).sum(1).eq(n).all() and bottom.flatten(1).sum(1).eq(n).all()
    assert not (top & bottom).any()
    flat = a.abs().flatten(1)
    kth = flat.sort(1, descending=True).values[:, n - 1]
    assert torch.equal(top.flatten(1), flat >= kth[:, None])
    kth_low = flat.sort(1).values[:, n - 1]
    assert torch.equal(bottom.flatten(1), flat <= kth_low[:, None])


def test_ties_are_broken_at_random_not_by_position():
    a = torch.zeros(200, 10)
    masks = keep_mask(a, 0.1, "top", 3)
    assert torch.equal(masks, keep_mask(a, 0.1, "top", 3))
    assert not torch.equal(masks, keep_mask(a, 0.1, "top", 4))
    per_position = masks.float().mean(0)
    assert per_position.min() > 0.03 and per_position.max() < 0.2  # every position gets chosen ~10% of the time


def test_n_kept_and_apply_mask():
    assert n_kept(0.05, 10) == 1 and n_kept(1.0, 10) == 10 and n_kept(0.3, 10) == 3
    x = torch.arange(6.0)
    keep = torch.tensor([True, False, True, False, False, True])
    assert apply_mask(x, keep, -1.0).tolist() == [0, -1, 2, -1, -1, 5]


def test_mass_share():
    a = torch.tensor([[1.0, -1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    region = torch.tensor([True, True, False, False]).expand(2, 4)
    share = mass_share(a, region)
    assert share[0] == 0.5 and torch.isnan(share[1])


def test_random_control_differs_by_seed_and_split():
    a = random_attributions((3, 4), 0, "train")
    assert torch.equal(a, random_attributions((3, 4), 0, "train"))
    assert not torch.equal(a, random_attributions((3, 4), 1, "train"))
    assert not torch.equal(a, random_attributions((3, 4), 0, "test"))
