"""Loading, validation, cleaning and splitting of the seed data."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from reggaeton.schema import LABEL_COLUMN, MODEL_FEATURES
from training.data import DataError, clean, load_labelled, read_source, split_holdout

FEATURES = list(MODEL_FEATURES)


@pytest.fixture(scope="module")
def labelled(repo_root):
    return load_labelled(
        repo_root / "data/data_reggaeton.csv", repo_root / "data/data_todotipo.csv", FEATURES
    )


def test_labels_come_from_the_files(repo_root):
    reg = read_source(repo_root / "data/data_reggaeton.csv", FEATURES, 1)
    other = read_source(repo_root / "data/data_todotipo.csv", FEATURES, 0)
    assert len(reg) == 70 and set(reg[LABEL_COLUMN]) == {1}
    assert len(other) == 2230 and set(other[LABEL_COLUMN]) == {0}
    unlabelled = read_source(repo_root / "data/data_test.csv", FEATURES, None)
    assert len(unlabelled) == 50 and LABEL_COLUMN not in unlabelled


def test_cleaning_counts_on_the_seed_data(labelled):
    frame, report = labelled
    assert (report.rows_in, report.dropped_missing, report.dropped_duplicates, report.rows_out) == (
        2300,
        8,
        77,
        2215,
    )
    assert frame[LABEL_COLUMN].value_counts().to_dict() == {0: 2145, 1: 70}
    assert not frame[FEATURES].isna().any().any()
    assert "id_new" not in frame


def test_clean_drops_missing_then_exact_duplicates():
    frame = pd.DataFrame(
        {
            "tempo": [1.0, 1.0, None, 2.0, 2.0],
            "energy": [0.1] * 5,
            "key": [1, 1, 1, 1, 2],
            LABEL_COLUMN: [1, 1, 1, 0, 0],
        }
    )
    out, report = clean(frame, ["tempo", "energy"])
    assert (report.dropped_missing, report.dropped_duplicates, report.rows_out) == (1, 1, 3)
    assert len(out) == 3  # rows differing only in "key" are not duplicates


def test_split_is_seeded_and_stratified(labelled):
    frame, _ = labelled
    a_train, a_hold = split_holdout(frame, 0.2, 42)
    b_train, b_hold = split_holdout(frame, 0.2, 42)
    pd.testing.assert_frame_equal(a_hold, b_hold)
    assert len(a_hold) == 443 and a_hold[LABEL_COLUMN].sum() == 14
    assert a_train[LABEL_COLUMN].sum() == 56


def _write(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("mutate", "column", "message"),
    [
        (lambda f: f.drop(columns=["tempo"]), "tempo", "missing column"),
        (lambda f: f.assign(energy=["loud"] + list(f["energy"].iloc[1:])), "energy", "wrong type"),
        (
            lambda f: f.assign(danceability=[1.7] + list(f["danceability"].iloc[1:])),
            "danceability",
            "out of range",
        ),
    ],
)
def test_bad_columns_name_file_and_column(tmp_path, repo_root, mutate, column, message):
    good = pd.read_csv(repo_root / "data/data_reggaeton.csv", index_col=0)
    bad = _write(tmp_path, "bad.csv", mutate(good))
    with pytest.raises(DataError) as info:
        load_labelled(bad, repo_root / "data/data_todotipo.csv", FEATURES)
    assert info.value.file == str(bad) and info.value.column == column
    assert message in str(info.value) and column in str(info.value)


def test_empty_class_and_unreadable_file(tmp_path, repo_root):
    good = pd.read_csv(repo_root / "data/data_reggaeton.csv", index_col=0)
    empty = _write(tmp_path, "empty.csv", good.iloc[:0])
    with pytest.raises(DataError, match="empty class") as info:
        load_labelled(empty, repo_root / "data/data_todotipo.csv", FEATURES)
    assert info.value.file == str(empty)
    with pytest.raises(DataError, match="file not found"):
        load_labelled(tmp_path / "nope.csv", repo_root / "data/data_todotipo.csv", FEATURES)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x00garbage\x00")
    with pytest.raises(DataError, match="unreadable"):
        load_labelled(binary, repo_root / "data/data_todotipo.csv", FEATURES)


def test_cli_exits_non_zero_naming_file_and_column(tmp_path, repo_root):
    good = pd.read_csv(repo_root / "data/data_todotipo.csv", index_col=0)
    bad = _write(tmp_path, "other.csv", good.drop(columns=["loudness"]))
    env = {
        "BENTOML_HOME": str(tmp_path / "home"),
        "PATH": "/usr/bin:/bin",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "training.train", "--set", f"data.other_csv={bad}"],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "'loudness'" in proc.stderr
    assert "missing column" in proc.stderr
    assert not (tmp_path / "home" / "models" / "reggaeton_clf").exists()
