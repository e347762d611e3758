"""The shipped data sets: identical to ../shared/data, loadable without pandas."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from shrinkage import InputError, datasets

from conftest import SHARED_DATA


@pytest.mark.parametrize("name, n_obs, n_groups, response, group", [
    ("dyestuff", 30, 6, "Yield", "Batch"),
    ("dyestuff2", 30, 6, "Yield", "Batch"),
    ("sleepstudy", 180, 18, "Reaction", "Subject"),
])
def test_load(name, n_obs, n_groups, response, group):
    d = datasets.load(name)
    assert d.name == name and d.response == response and d.group == group
    assert d.y.shape == (n_obs,) and d.y.dtype == float and np.isfinite(d.y).all()
    assert np.unique(d.groups).size == n_groups
    assert d.source and d.description
    with pytest.raises(ValueError):
        d.y[0] = 0.0  # read-only


@pytest.mark.parametrize("name", datasets.names())
def test_package_copy_equals_shared_data(name):
    shared = SHARED_DATA / f"{name}.csv"
    if not shared.exists():
        pytest.skip("../shared/data is not present (installed package)")
    ours = datasets.load(name).path
    assert hashlib.sha256(ours.read_bytes()).digest() == hashlib.sha256(shared.read_bytes()).digest()


def test_values():
    d = datasets.load("Dyestuff")  # case-insensitive
    assert d.groups.tolist()[:6] == ["A"] * 5 + ["B"]
    assert d.y[:2].tolist() == [1545.0, 1440.0]
    s = datasets.load("sleepstudy")
    assert s.groups[0] == "308"  # labels as written in the CSV: text, no integer coercion
    assert s.y[0] == 249.56


def test_unknown_name():
    with pytest.raises(InputError, match="no data set named 'iris'; available: dyestuff, dyestuff2, sleepstudy"):
        datasets.load("iris")
