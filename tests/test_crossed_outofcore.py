"""Crossed random intercepts out of core (shrinkage.sources.crossed): the moment equations
against dense traces and against simulation, backfitting against the exact solution
(Henderson's equations, dense; the in-memory REML fit at its own variances), and every
engine (DuckDB, Dask, Spark) against the in-memory passes.  Spark tests skip where pyspark
or Java is missing, never when the CI variable is set."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage.sources.crossed import fit_crossed
from test_lmm_lme4 import require_r
from test_sources_lmm import _spark_or_skip  # one rule for skipping Spark (never under CI)

F = "y ~ x1 + x2 + (1 | a) + (1 | b)"
RTOL = 1e-10


def design(rng, N=900, R=40, C=25, skew=True):
    """An unbalanced crossed design: level probabilities unequal, repeated (a, b) cells,
    covariates correlated with the levels (so the trace corrections matter)."""
    pa = rng.dirichlet(np.full(R, 0.7)) if skew else np.full(R, 1 / R)
    pb = rng.dirichlet(np.full(C, 0.7)) if skew else np.full(C, 1 / C)
    a, b = rng.choice(R, N, p=pa), rng.choice(C, N, p=pb)
    x1 = rng.normal(size=N) + a / R
    x2 = rng.normal(size=N) * (1 + b / C)
    return a, b, x1, x2


def frame(rng, sA=1.3, sB=0.6, sE=1.0, offset=0.0, **kw):
    a, b, x1, x2 = design(rng, **kw)
    y = offset + 0.5 * x1 - 0.2 * x2 + rng.normal(0, sA**0.5, a.max() + 1)[a] + rng.normal(0, sB**0.5, b.max() + 1)[b]
    y = y + rng.normal(0, sE**0.5, a.size)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "a": [f"s{i:03d}" for i in a], "b": b})


def dense(df):
    """y, X, Z_a, Z_b as dense matrices, levels sorted (as the fit sorts them)."""
    X = np.column_stack([np.ones(len(df)), df.x1, df.x2])
    Za = pd.get_dummies(df.a).sort_index(axis=1).to_numpy(float)
    Zb = pd.get_dummies(df.b).sort_index(axis=1).to_numpy(float)
    return df.y.to_numpy(), X, Za, Zb


def projector(Z):
    return np.eye(Z.shape[0]) - Z @ np.linalg.solve(Z.T @ Z, Z.T)


def dense_moments(X, Za, Zb):
    """E[r'Q r] = tr(M Q M V) for Q in (P_a, P_b, I), as a 3 x 3 matrix over (s_A, s_B, s_E), by dense traces."""
    M = projector(X)
    Ka, Kb, I = Za @ Za.T, Zb @ Zb.T, np.eye(X.shape[0])
    return np.array([[np.trace(M @ Q @ M @ K) for K in (Ka, Kb, I)] for Q in (projector(Za), projector(Zb), I)])


def test_moment_equations_equal_dense_traces(rng):
    df = frame(rng)
    y, X, Za, Zb = dense(df)
    r = fit_crossed(df, F)
    assert (df.groupby(["a", "b"]).size() > 1).any()  # repeated cells: n_ij^2 terms exercised
    np.testing.assert_allclose(r.moments.coef, dense_moments(X, Za, Zb), rtol=RTOL)
    res = projector(X) @ y
    Q = [res @ projector(Za) @ res, res @ projector(Zb) @ res, res @ res]
    np.testing.assert_allclose(r.moments.Q, Q, rtol=1e-9)
    np.testing.assert_allclose(r.variances, np.linalg.solve(r.moments.coef, Q), rtol=1e-9)


def test_moments_unbiased_by_simulation(rng):
    """Over 4000 draws on one design, the mean of each Q is its derived expectation and the
    mean of the (untruncated) moment estimates is the truth, within 4 Monte Carlo SE."""
    df = frame(rng, N=300, R=20, C=12)
    _, X, Za, Zb = dense(df)
    truth = np.array([1.3, 0.6, 1.0])
    reps = 4000
    Y = (X @ [1.0, 0.5, -0.2])[:, None] + Za @ rng.normal(0, truth[0] ** 0.5, (Za.shape[1], reps)) \
        + Zb @ rng.normal(0, truth[1] ** 0.5, (Zb.shape[1], reps)) + rng.normal(0, 1.0, (X.shape[0], reps))
    R = projector(X) @ Y
    Q = np.array([(R * (projector(Za) @ R)).sum(0), (R * (projector(Zb) @ R)).sum(0), (R * R).sum(0)])
    coef = fit_crossed(df, F).moments.coef  # the design's coefficients as the fit computes them
    se = Q.std(axis=1) / reps**0.5
    assert (np.abs(Q.mean(axis=1) - coef @ truth) < 4 * se).all()
    est = np.linalg.solve(coef, Q)
    assert (np.abs(est.mean(axis=1) - truth) < 4 * est.std(axis=1) / reps**0.5).all()


def henderson(df, variances):
    """beta and the BLUPs solving Henderson's equations densely at the given variances."""
    y, X, Za, Zb = dense(df)
    sA, sB, sE = variances
    W = np.hstack([X, Za, Zb])
    P = np.diag(np.r_[np.zeros(X.shape[1]), np.full(Za.shape[1], sE / sA), np.full(Zb.shape[1], sE / sB)])
    sol = np.linalg.solve(W.T @ W + P, W.T @ y)
    p, R = X.shape[1], Za.shape[1]
    return sol[:p], sol[p:p + R], sol[p + R:]


def test_backfitting_equals_henderson_at_the_moment_variances(rng):
    df = frame(rng)
    r = fit_crossed(df, F, tol=1e-13)
    beta, ba, bb = henderson(df, r.variances)
    scale = np.abs(beta).max()
    np.testing.assert_allclose(r.beta, beta, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(r.b[0], ba, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(r.b[1], bb, rtol=0, atol=1e-10 * scale)
    _, X, Za, Zb = dense(df)
    V = r.variances[0] * Za @ Za.T + r.variances[1] * Zb @ Zb.T + r.variances[2] * np.eye(len(df))
    np.testing.assert_allclose(r.vcov_matrix, np.linalg.inv(X.T @ np.linalg.solve(V, X)), rtol=1e-9)


def test_negative_moment_estimate_truncated_at_zero():
    """No b effect: the moment equations' solution has s_B < 0 (seed 0); the fit sets s_B = 0
    and s_A, s_E solve the three equations by least squares (rows scaled to max 1)."""
    df = frame(np.random.default_rng(0), sB=0.0, N=300, R=15, C=10)
    r = fit_crossed(df, F)
    coef, Q = r.moments.coef, r.moments.Q
    assert np.linalg.solve(coef, Q)[1] < 0 and r.variances[1] == 0
    scale = np.abs(coef).max(axis=1)[:, None]
    two, *_ = np.linalg.lstsq((coef / scale)[:, [0, 2]], Q / scale[:, 0], rcond=None)
    np.testing.assert_allclose(r.variances[[0, 2]], two, rtol=1e-10)
    assert r.sweeps == 0  # one factor left: its exact solve


def test_a_zero_variance_leaves_its_factor_out(rng):
    """s_A = 0: no sweep (one factor's exact solve); beta is GLS and b's BLUPs are
    s_B Z_b'V^-1 (y - X beta), V = s_B Z_b Z_b' + s_E I, computed densely."""
    df = frame(rng, N=400, R=20, C=15)
    y, X, _, Zb = dense(df)
    r = fit_crossed(df, F, variances={"a": 0.0, "b": 0.6, "Residual": 1.1})
    V = 0.6 * Zb @ Zb.T + 1.1 * np.eye(len(df))
    beta = np.linalg.solve(X.T @ np.linalg.solve(V, X), X.T @ np.linalg.solve(V, y))
    assert r.sweeps == 0 and (r.b[0] == 0).all()
    np.testing.assert_allclose(r.beta, beta, rtol=1e-10)
    np.testing.assert_allclose(r.b[1], 0.6 * Zb.T @ np.linalg.solve(V, y - X @ beta), rtol=0, atol=1e-10)


def test_backfitting_at_reml_variances_is_the_exact_reml_fit(rng, tmp_path):
    """Given the exact REML fit's variances, the out-of-core fit (DuckDB on Parquet) gives
    its fixef, vcov and ranef: the same equations solved by passes."""
    df = frame(rng, offset=1e3)
    m = shrinkage.fit(F, data=df)
    vc = {"a": m.varcorr["a"].iloc[0, 0], "b": m.varcorr["b"].iloc[0, 0], "Residual": m.sigma2}
    df.to_parquet(tmp_path / "d.parquet")
    r = shrinkage.fit(F, data=str(tmp_path / "d.parquet"), variances=vc, tol=1e-13, progress=False)
    assert r.method == "backfitting"
    np.testing.assert_allclose(r.beta, m.beta, rtol=1e-9)
    np.testing.assert_allclose(r.vcov_matrix, m.vcov_matrix, rtol=1e-8)
    for f in "ab":
        np.testing.assert_allclose(r.ranef[f].to_numpy(), m.ranef[f].to_numpy(), rtol=0, atol=1e-9)
        assert list(r.ranef[f].index) == list(m.ranef[f].index)


def test_moment_variances_near_reml_on_larger_data(rng):
    """On 20,000 rows (300 x 150 levels) the moment variances are within 10% of REML's and
    the fixed effects within 0.01 standard errors.  Measured over 8 draws of this design:
    the relative differences (s_A, s_B, s_E) have SD 1.4%, 2.3%, 1.3% (largest 3.2%), the
    fixed effects differ by at most 0.0012 SE; 10% is over 4 SDs."""
    df = frame(rng, N=20_000, R=300, C=150, skew=False)
    m = shrinkage.fit(F, data=df)
    r = fit_crossed(df, F)
    reml = [m.varcorr["a"].iloc[0, 0], m.varcorr["b"].iloc[0, 0], m.sigma2]
    np.testing.assert_allclose(r.variances, reml, rtol=0.10)
    assert (np.abs(r.beta - m.beta) < 0.01 * np.sqrt(np.diag(m.vcov_matrix))).all()
    assert r.method == "moments+backfitting" and 'method = "moments+backfitting"' in r.summary()
    assert "not REML" in r.summary() and r.converged


CLUSTER = """
import json, sys
if __name__ == "__main__":  # spawned workers re-import this module
    import numpy as np, dask.dataframe as dd, pandas as pd, shrinkage
    from distributed import Client, LocalCluster
    df = pd.read_parquet(sys.argv[1])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, Client(c):
        r = shrinkage.fit(sys.argv[2], data=dd.from_pandas(df, npartitions=4), tol=float(sys.argv[3]), progress=False)
    print(json.dumps({"variances": r.variances.tolist(), "beta": r.beta.tolist(), "b": [v.tolist() for v in r.b],
                      "sweeps": r.sweeps}))
"""


def _same(r, ref):
    """An engine's fit equals the in-memory passes' to RTOL (estimates, BLUPs, levels, counts)."""
    assert (r.nobs, r.dropped, r.sweeps) == (ref.nobs, ref.dropped, ref.sweeps)
    for got, want in ((r.variances, ref.variances), (r.beta, ref.beta), (r.vcov_matrix, ref.vcov_matrix),
                      *zip(r.b, ref.b)):
        np.testing.assert_allclose(got, want, rtol=0, atol=RTOL * np.abs(want).max())
    for got, want in zip(r.labels, ref.labels):
        assert list(got) == list(want)


TOL = 1e-6  # engines run the same sweeps as the in-memory passes: they agree to rounding at any tolerance


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    df = frame(np.random.default_rng(11), offset=1e6)
    df.loc[7, "x1"] = np.nan  # dropped and counted, as lmer's na.omit
    folder = tmp_path_factory.mktemp("crossed")
    df.to_parquet(folder / "d.parquet")
    return df, folder, fit_crossed(df, F, tol=TOL)


def test_duckdb_equals_in_memory(data):
    import duckdb

    df, folder, ref = data
    assert ref.dropped == 1
    _same(shrinkage.fit(F, data=str(folder / "d.parquet"), tol=TOL, progress=False), ref)
    con = duckdb.connect()
    _same(shrinkage.fit(F, data=con.read_parquet(str(folder / "d.parquet")), tol=TOL, progress=False), ref)


def test_duckdb_cells_in_chunks(data, monkeypatch):
    """The cells pass in chunks of the levels of a (as at 1e8 rows): the same sums."""
    from shrinkage.sources.crossed import engines

    _, folder, ref = data
    monkeypatch.setattr(engines, "CELLS", 100)  # 899 rows: 9 chunks
    _same(shrinkage.fit(F, data=str(folder / "d.parquet"), tol=TOL, progress=False), ref)


def test_csv_reads_both_factors_as_text(data):
    """A CSV's grouping columns are text, both of them ("007" stays "007"), in every pass."""
    df, folder, _ = data
    df = df.assign(b=[f"{v:03d}" for v in df.b])
    df.to_csv(folder / "d.csv", index=False)
    r = shrinkage.fit(F, data=str(folder / "d.csv"), tol=TOL, progress=False)
    _same(r, fit_crossed(df, F, tol=TOL))
    assert r.labels[1][0] == "000"


def test_dask_equals_in_memory(data):
    dd = pytest.importorskip("dask.dataframe")
    df, _, ref = data
    _same(shrinkage.fit(F, data=dd.from_pandas(df, npartitions=3), tol=TOL, progress=False), ref)


@pytest.mark.slow
def test_spark_equals_in_memory(data):
    _spark_or_skip()
    from pyspark.sql import SparkSession

    _, folder, ref = data
    spark = (SparkSession.builder.master("local[2]").appName("shrinkage-crossed-tests")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    sdf = spark.read.parquet(str(folder / "d.parquet"))  # as a cluster reads it (rows from Python re-run each job)
    _same(shrinkage.fit(F, data=sdf, tol=TOL, progress=False), ref)


def test_progress_counts_the_passes(data):
    _, folder, ref = data
    seen = []
    r = shrinkage.fit(F, data=str(folder / "d.parquet"), tol=1e-12, progress=lambda done, total: seen.append(done))
    # means, two per-level passes, the cells, two joins for the covariates' means, two per sweep but the first's one
    assert seen == list(range(1, 6 + 2 * r.sweeps))


@pytest.mark.parametrize("formula, words", [
    ("y ~ x1 + (x1 | a) + (1 | b)", "two crossed random intercepts"),
    ("y ~ x1 + (1 | a) + (1 | b) + (1 | c)", "two crossed random intercepts"),
    ("y ~ x1 + (1 | a/b)", "two crossed random intercepts"),
    ("y ~ 0 + x1 + (1 | a) + (1 | b)", "with an intercept"),
    ("y ~ log(x1) + (1 | a) + (1 | b)", "compute transforms in the source"),
    ("y ~ a + (1 | a) + (1 | b)", "also used as a covariate"),
    ("y ~ z + (1 | a) + (1 | b)", "'z' is not in the data"),
])
def test_unsupported_models_refused(data, formula, words):
    _, folder, _ = data
    with pytest.raises(shrinkage.InputError, match=words.replace("(", r"\(")):
        shrinkage.fit(formula, data=str(folder / "d.parquet"))


def test_bad_options_and_data_refused(data, tmp_path):
    df, folder, _ = data
    path = str(folder / "d.parquet")
    with pytest.raises(shrinkage.InputError, match="ML is not available"):
        shrinkage.fit(F, data=path, method="ML")
    with pytest.raises(shrinkage.InputError, match="missing values .* column 'x1' \\(1 row"):
        shrinkage.fit(F, data=path, na_action="raise")
    with pytest.raises(shrinkage.InputError, match="out of core only"):
        shrinkage.fit(F, data=df, tol=1e-9)
    with pytest.raises(shrinkage.InputError, match="tol must be"):
        shrinkage.fit(F, data=path, tol=0)
    with pytest.raises(shrinkage.InputError, match="variances must map 'a', 'b' and 'Residual'"):
        shrinkage.fit(F, data=path, variances={"a": 1.0})
    df.assign(b=df.b + 0.5).to_parquet(tmp_path / "float.parquet")
    with pytest.raises(shrinkage.InputError, match="integer or text labels: cast 'b'"):
        shrinkage.fit(F, data=str(tmp_path / "float.parquet"))


def test_unconverged_backfitting_warns(data):
    _, folder, _ = data
    with pytest.warns(RuntimeWarning, match="backfitting stopped after 2 sweeps"):
        r = shrinkage.fit(F, data=str(folder / "d.parquet"), max_sweeps=2, progress=False)
    assert not r.converged and "NOT converged" in r.summary()


@pytest.mark.slow
def test_insteval_out_of_core_against_the_exact_fit(tmp_path):
    """lme4's InstEval (73,421 rows, 2,972 x 1,128 levels), read from a CSV R writes: at the
    exact REML fit's variances the out-of-core fit gives its fixef, vcov and ranef; the
    moment variances (measured: -3.8%, +3.9%, +0.34% of REML's s, d, residual; the
    intercept 0.003 SE away) are within 6% of REML's."""
    require_r()
    csv = tmp_path / "insteval.csv"
    subprocess.run(["Rscript", "-e", "suppressMessages(library(lme4)); "
                    f"write.csv(InstEval[, c('s', 'd', 'y')], '{csv}', row.names = FALSE)"], check=True, timeout=300)
    f = "y ~ 1 + (1 | s) + (1 | d)"
    m = shrinkage.fit(f, data=pd.read_csv(csv, dtype={"s": str, "d": str}))
    reml = [m.varcorr["s"].iloc[0, 0], m.varcorr["d"].iloc[0, 0], m.sigma2]
    r = shrinkage.fit(f, data=str(csv), variances=dict(zip(("s", "d", "Residual"), reml)), tol=1e-12, progress=False)
    np.testing.assert_allclose(r.beta, m.beta, rtol=1e-12)
    np.testing.assert_allclose(r.vcov_matrix, m.vcov_matrix, rtol=1e-11)
    for k in "sd":
        np.testing.assert_allclose(r.ranef[k].to_numpy(), m.ranef[k].to_numpy(), rtol=0, atol=1e-11)
    moments = shrinkage.fit(f, data=str(csv), progress=False)
    np.testing.assert_allclose(moments.variances, reml, rtol=0.06)
    assert abs(moments.beta[0] - m.beta[0]) < 0.01 * m.vcov_matrix[0, 0] ** 0.5


@pytest.mark.slow
def test_dask_local_cluster_equals_in_memory(data, tmp_path):
    """Worker processes of a dask.distributed LocalCluster (the per-level tables shipped once a pass)."""
    pytest.importorskip("distributed")
    _, folder, ref = data
    (tmp_path / "cluster.py").write_text(CLUSTER)
    run = subprocess.run([sys.executable, str(tmp_path / "cluster.py"), str(folder / "d.parquet"), F, str(TOL)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["sweeps"] == ref.sweeps
    for key, want in (("variances", ref.variances), ("beta", ref.beta), ("b", np.concatenate(ref.b))):
        value = np.concatenate(got[key]) if key == "b" else np.asarray(got[key])
        np.testing.assert_allclose(value, want, rtol=0, atol=RTOL * np.abs(want).max())
