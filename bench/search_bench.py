"""Person-search latency: ``python bench/search_bench.py [--sizes 1000 10000 100000] [--dim 512]``.

One query at a time (as SearchPersons runs), top-``k``, over N persons' representative embeddings, three ways in one
interleaved loop so machine load hits them alike:
  * ``numpy``: brute force, ``matrix @ q`` and ``argpartition`` (the baseline);
  * ``faiss_flat``: reid_svc's exact index (``PersonIndex`` below ``exact_max``: IndexFlatIP in IndexIDMap2);
  * ``faiss_ivf``: reid_svc's approximate index past ``exact_max`` (IndexIVFFlat, ~sqrt(N) lists, ``nprobe``).
The persons are synthetic but clustered like real ones (N/10 "looks", each person a noisy copy of one, queries a
fresh noisy sighting of a stored person), L2-normalised; recall@k of the IVF index is against the exact answer.
Wall-clock and CPU-time (this thread) percentiles: on a busy machine the gap between them is time spent waiting
for a core. Also: time to build each index. Writes ``bench/results/search_bench.json``.
"""

from __future__ import annotations

import os

# One thread per query, as reid_svc runs it (REID_SEARCH_THREADS): on a busy CPU, OpenMP/BLAS threads waiting for
# each other cost more than one query's arithmetic. Set before numpy and faiss load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from reid_svc.search import PersonIndex, Sighting  # noqa: E402


def persons(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    looks = rng.normal(size=(max(1, n // 10), dim)).astype(np.float32)
    looks /= np.linalg.norm(looks, axis=1, keepdims=True)
    noise = rng.normal(size=(n, dim)).astype(np.float32)
    x = looks[rng.integers(0, len(looks), n)] + 0.6 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(vectors: np.ndarray, exact_max: int, nprobe: int) -> tuple[PersonIndex, float]:
    start = time.perf_counter()
    idx = PersonIndex(vectors.shape[1], exact_max=exact_max, nprobe=nprobe)
    sightings = [Sighting(f"s{i // 1000}", i, ("cam1",), 0, 0) for i in range(len(vectors))]
    idx.upsert(sightings, vectors)
    return idx, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "search_bench.json")
    a = p.parse_args()
    rng = np.random.default_rng(25)
    results = []
    for n in a.sizes:
        x = persons(n, a.dim, rng)
        flat, flat_build_s = build(x, n + 1, a.nprobe)
        ivf, ivf_build_s = build(x, 0, a.nprobe)
        assert (flat.kind, ivf.kind) == ("flat", "ivf")
        picks = rng.integers(0, n, a.queries)
        noise = rng.normal(size=(a.queries, a.dim)).astype(np.float32)
        queries = x[picks] + 0.3 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)

        def brute(q: np.ndarray, x: np.ndarray = x) -> np.ndarray:
            s = x @ q
            top = np.argpartition(-s, a.k)[: a.k]
            return top[np.argsort(-s[top])]

        methods = {
            "numpy": brute,
            "faiss_flat": lambda q, idx=flat: [h.sighting.global_id for h in idx.search(q, a.k)],
            "faiss_ivf": lambda q, idx=ivf: [h.sighting.global_id for h in idx.search(q, a.k)],
        }
        times: dict[str, list[float]] = {m: [] for m in methods}
        cpu: dict[str, list[float]] = {m: [] for m in methods}
        answers: dict[str, list] = {m: [] for m in methods}
        for q in queries:
            for m, f in methods.items():
                start, start_cpu = time.perf_counter(), time.thread_time()
                answers[m].append(list(f(q)))
                times[m].append((time.perf_counter() - start) * 1000)
                cpu[m].append((time.thread_time() - start_cpu) * 1000)
        exact = [set(r) for r in answers["numpy"]]
        row = {"persons": n, "dim": a.dim, "k": a.k, "queries": a.queries, "nprobe": a.nprobe}
        row |= {"build_s": {"faiss_flat": flat_build_s, "faiss_ivf": ivf_build_s}}
        for m, t in times.items():
            recall = float(np.mean([len(exact[i] & set(r)) / a.k for i, r in enumerate(answers[m])]))
            c = cpu[m]
            row[m] = {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)), "recall": recall}
            row[m] |= {"cpu_p50_ms": float(np.percentile(c, 50)), "cpu_p95_ms": float(np.percentile(c, 95))}
            print(
                f"N={n:7d} d={a.dim} {m:10s} p50 {row[m]['p50_ms']:7.2f} ms  p95 {row[m]['p95_ms']:7.2f} ms  "
                f"(CPU p50 {row[m]['cpu_p50_ms']:6.2f} p95 {row[m]['cpu_p95_ms']:6.2f})  "
                f"recall@{a.k} vs exact {recall:.3f}",
                flush=True,
            )
        print(f"N={n:7d} build: flat {flat_build_s:.2f} s, ivf {ivf_build_s:.2f} s", flush=True)
        results.append(row)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
