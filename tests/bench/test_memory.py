"""The memory pre-check's limits: the cgroup's memory.max (v2, every level up; v1), RLIMIT_AS."""

import resource

import pytest

from bench.harness import memory
from heconv.errors import InputError


def _cgroup(tmp_path, proc_line: str, files: dict[str, str]):
    tmp_path.mkdir(exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text(proc_line + "\n")
    for rel, text in files.items():
        (tmp_path / "fs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / rel).write_text(text)
    return tmp_path / "fs", proc


def test_cgroup_v2_takes_the_tightest_level(tmp_path):
    root, proc = _cgroup(tmp_path, "0::/a/b", {"a/memory.max": "1000", "a/memory.current": "100",
                                              "a/b/memory.max": "max", "a/b/memory.current": "50"})
    assert memory.cgroup_memory_left(root, proc) == 900


def test_cgroup_v1_and_no_limit(tmp_path):
    root, proc = _cgroup(tmp_path, "4:memory:/x", {"memory/x/memory.limit_in_bytes": "5000",
                                                   "memory/x/memory.usage_in_bytes": "1000"})
    assert memory.cgroup_memory_left(root, proc) == 4000
    root, proc = _cgroup(tmp_path / "n", "0::/", {"memory.max": "max"})
    assert memory.cgroup_memory_left(root, proc) is None


def test_the_smallest_room_refuses_and_names_it(monkeypatch):
    monkeypatch.setattr(memory, "free_ram", lambda: 8 << 30)
    monkeypatch.setattr(memory, "cgroup_memory_left", lambda: 1 << 30)
    monkeypatch.setattr(memory, "address_space_left", lambda: None)
    with pytest.raises(InputError, match=r"needs about 2.0 GiB .* may take 1.0 GiB more \(its cgroup's memory.max\)"):
        memory.check_memory("layer x", 2 << 30)
    memory.check_memory("layer x", 512 << 20)


def test_address_space_left_follows_rlimit_as():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        assert memory.address_space_left() is None
    else:
        assert 0 <= memory.address_space_left() <= soft


def test_peak_memory_restarts_at_each_reset():
    """A record's peak is its own case's: memory a finished case held no longer counts after the reset.
    Anonymous maps, touched page by page, so that the allocator's cached memory plays no part."""
    import mmap

    from bench.harness.memory import peak_rss_bytes, reset_peak_rss

    def touched(mib: int) -> mmap.mmap:
        m = mmap.mmap(-1, mib << 20)
        for i in range(0, mib << 20, 4096):
            m[i] = 1
        return m

    big = touched(300)
    big.close()  # unmapped: out of the resident set
    if not reset_peak_rss():
        pytest.skip("this kernel offers no peak reset (/proc/self/clear_refs)")
    before = peak_rss_bytes()
    small = touched(40)
    after = peak_rss_bytes()
    small.close()
    assert after >= before + (30 << 20)  # the small map counts ...
    assert after < before + (150 << 20)  # ... and the big one, gone before the reset, does not
