from heconv.backends.base import OpCounts
from heconv.cost import UnitCosts, floor_seconds


def test_floor_is_linear_in_counts():
    u = UnitCosts(rotation=3.0, pmul=2.0, add=1.0, plain_add=0.5, rescale=7.0, encrypt=11.0, encode=100.0)
    c = OpCounts(rotations=5, key_switches=5, pmuls=4, adds=3, plain_adds=2, rescales=1, encryptions=1, encodes=9)
    assert floor_seconds(c, u) == 5 * 3 + 4 * 2 + 3 * 1 + 2 * 0.5 + 7 + 11 + 9 * 100
    # Key switches, not logical rotations, carry the rotation cost.
    assert floor_seconds(OpCounts(rotations=1, key_switches=2), u) == 6.0


def test_floor_counts_squarings_and_encodes():
    """A slot run encodes nothing (its plaintexts are compiled); a coefficient run encodes its masks."""
    u = UnitCosts(rotation=0, pmul=0, add=0, plain_add=0, rescale=0, encrypt=0, encode=100.0, cmul=4.0)
    assert floor_seconds(OpCounts(cmuls=3, encodes=7), u) == 712.0
    assert UnitCosts(1, 2, 3, 4, 5, 6, 7).to_dict()["cmul"] == 0.0
