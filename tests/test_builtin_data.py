"""Every built-in labelled data set loads from its package (skipped where the package is missing)."""
import pytest

from tunesmith.assets import DATASETS
from tunesmith.data.builtin import LABELLED, load_builtin


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_builtin_loads_with_two_labels_and_no_empty_text(name):
    if DATASETS[name].path() is None:
        pytest.skip(f"{DATASETS[name].pip} is not installed")
    rows, info = load_builtin(name)
    assert len(rows) > 1000 and info["source"]
    assert len({r["label"] for r in rows}) == 2
    assert all(r["text"].strip() for r in rows)


def test_every_labelled_builtin_is_a_described_asset():
    assert set(LABELLED) <= set(DATASETS)
    assert all(DATASETS[n].kind == "text-classification" for n in LABELLED)
