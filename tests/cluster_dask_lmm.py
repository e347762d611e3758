"""Run by tests/test_sources_lmm.py in its own process (a LocalCluster with worker
processes must be started under __main__).  Prints JSON: for each formula, its fit
from cross-products computed on the workers and the in-memory fit of the same rows."""

from __future__ import annotations

import json
import sys


def main(folder: str, formulas: list) -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import shrinkage
    from shrinkage.lmm import lmer

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ddf = dd.read_parquet(f"{folder}/*.parquet")
        fits = [shrinkage.fit(formula, data=ddf) for formula in formulas]
        workers = len(client.scheduler_info()["workers"])
    frame = ddf.compute()
    # Dask gives text as string[pyarrow], which formulaic cannot multiply in x1:f (in memory)
    frame = frame.astype({c: object for c in frame.columns if frame[c].dtype.kind not in "iufb"})
    results = []
    for formula, a in zip(formulas, fits):
        out = {"workers": workers}
        for prefix, r in (("", a), ("ref_", lmer(formula, frame))):
            out.update({prefix + "labels": [str(v) for v in r.labels], prefix + "nobs": r.nobs,
                        prefix + "beta": r.beta.tolist(), prefix + "theta": r.theta.tolist(),
                        prefix + "sigma2": r.sigma2, prefix + "deviance": r.deviance})
        results.append(out)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
