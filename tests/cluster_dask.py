"""Run by tests/test_cluster.py in its own process (a LocalCluster with worker processes
must be started under __main__).  Prints JSON: the statistics from Dask and in memory."""

from __future__ import annotations

import json
import sys

import numpy as np


def main(folder: str) -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import shrinkage
    from shrinkage.sources import group_stats

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ddf = dd.read_parquet(f"{folder}/*.parquet")
        s = group_stats(ddf, "y", "g")
        workers = len(client.scheduler_info()["workers"])
    pdf = ddf.compute()
    ref = shrinkage.GroupStats.from_data(pdf.y.to_numpy(), pdf.g.to_numpy())
    a, b = shrinkage.fit(stats=s), shrinkage.fit(stats=ref)
    print(json.dumps(dict(workers=workers, labels=[str(v) for v in s.labels], ref_labels=[str(v) for v in ref.labels],
                          n=s.n.tolist(), ref_n=ref.n.tolist(), mean=s.mean.tolist(), ref_mean=ref.mean.tolist(),
                          ss=s.ss.tolist(), ref_ss=ref.ss.tolist(),
                          fit=[a.beta0, a.sigma2, a.sigma_b2, a.loglik], ref_fit=[b.beta0, b.sigma2, b.sigma_b2, b.loglik])))


if __name__ == "__main__":
    main(sys.argv[1])
