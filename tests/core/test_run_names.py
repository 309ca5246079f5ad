"""A run is named on the command line by its id, the start of one, or its name (no TensorFlow here)."""

import pytest

from desktop_llm.core.config import RunConfig
from desktop_llm.store import RunStore, StoreError


@pytest.fixture()
def store(tmp_path):
    return RunStore(tmp_path / "ws")


def test_id_prefix_name_and_name_prefix(store):
    shake = store.create(RunConfig(name="shakespeare-small"))
    tiny = store.create(RunConfig(name="nu-tiny"))
    assert store.resolve(tiny.id).id == tiny.id
    assert store.resolve(tiny.id[:-1]).id == tiny.id  # a unique start of the id
    assert store.resolve("nu-tiny").id == tiny.id  # the exact name
    assert store.resolve("nu").id == tiny.id  # a unique start of a name
    assert store.resolve("shake").id == shake.id
    assert store.resolve("  nu-tiny ").id == tiny.id


def test_an_exact_name_wins_over_a_longer_name_it_starts(store):
    short = store.create(RunConfig(name="nu"))
    store.create(RunConfig(name="nu-tiny"))
    assert store.resolve("nu").id == short.id


def test_ambiguity_is_an_error_that_lists_the_matches(store):
    a = store.create(RunConfig(name="nu-tiny"))
    b = store.create(RunConfig(name="nu-tiny"))
    with pytest.raises(StoreError) as e:
        store.resolve("nu-tiny")
    msg = str(e.value)
    assert "matches 2 runs" in msg and a.id in msg and b.id in msg and "(nu-tiny)" in msg
    assert "\n" not in msg
    with pytest.raises(StoreError, match="matches 2 runs"):
        store.resolve("2")  # both ids start with the year
    assert store.resolve(a.id).id == a.id  # the full id is never ambiguous


def test_no_match_is_a_clear_error(store):
    store.create(RunConfig(name="nu-tiny"))
    with pytest.raises(StoreError, match=r"No run 'nope'.*runs` lists them"):
        store.resolve("nope")
    with pytest.raises(StoreError, match="Give a run id or name"):
        store.resolve("")
    with pytest.raises(StoreError, match="No run"):
        store.resolve("../ws/runs")  # never a path outside the runs folder
