"""Recording a dispatch problem so that its plan can be reproduced exactly.

The record is a NumPy ``.npz`` archive of every array of the problem (flexibility, costs,
targets, grid rows) plus a JSON header with the solve options and the code version. Its
digest is a SHA-256 over the arrays' names, dtypes, shapes and bytes in a fixed order and
over the header, so it identifies the inputs independently of how the archive is written.
The solver runs single-threaded with a deterministic algorithm, so solving a loaded record
gives the same setpoints bit for bit (checked in the tests).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from derms.orchestration.flexibility import Flexibility
from derms.orchestration.grid import GridConstraints
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Sense, Target
from derms.orchestration.solution import Solution

FORMAT = "derms.orchestration.record/1"
_FLEX = tuple(name for name in Flexibility.__slots__ if name != "dt_s")  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Record:
    data: bytes
    digest: str


def _digest(arrays: dict[str, np.ndarray], header: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(header, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else json.dumps(a.tolist()).encode())
    return h.hexdigest()


def record(problem: Problem, **options: Any) -> Record:
    """Record ``problem`` and the keyword ``options`` given to :func:`derms.orchestration.optimizer.solve`."""
    f = problem.flex
    arrays: dict[str, np.ndarray] = {f"flex.{k}": getattr(f, k) for k in _FLEX}
    for k in ("cost_up", "cost_down", "reliability", "feeder", "bus"):
        arrays[k] = getattr(problem, k)
    for i, t in enumerate(problem.targets):
        arrays[f"target{i}.members"] = t.members
        arrays[f"target{i}.value_w"] = t.value_w
    if problem.prices is not None:
        arrays["prices"] = problem.prices
    if problem.price_members is not None:
        arrays["price_members"] = problem.price_members
    g = problem.grid
    if g is not None:
        for name, m in (("sp", g.sp), ("sq", g.sq)):
            if m is not None:
                m = m.tocsr()
                arrays[f"grid.{name}.data"], arrays[f"grid.{name}.indices"] = m.data, m.indices
                arrays[f"grid.{name}.indptr"] = m.indptr
        for k in ("value0", "limit_lo", "limit_hi", "is_voltage"):
            arrays[f"grid.{k}"] = getattr(g, k)
    header = {
        "format": FORMAT,
        "der_ids": list(problem.der_ids),
        "dt_s": f.dt_s,
        "cost_q": problem.cost_q,
        "targets": [
            {"objective_id": t.objective_id, "sense": str(t.sense), "priority": t.priority}
            for t in problem.targets
        ],
        "grid": None
        if g is None
        else {"labels": list(g.labels), "shape": list(g.sp.shape), "q": g.sq is not None},
        "options": options,
    }
    buf = io.BytesIO()
    np.savez(buf, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    return Record(buf.getvalue(), _digest(arrays, header))


def load(data: bytes) -> tuple[Problem, dict[str, Any], str]:
    """The problem, the solve options and the digest of a record; raises ``ValueError`` if malformed."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"not a dispatch record: {exc}") from exc
    if header.get("format") != FORMAT:
        raise ValueError(f"unsupported record format {header.get('format')!r}")
    digest = _digest(arrays, header)
    flex = Flexibility(dt_s=header["dt_s"], **{k: arrays[f"flex.{k}"] for k in _FLEX})
    targets = tuple(
        Target(
            t["objective_id"],
            arrays[f"target{i}.members"],
            arrays[f"target{i}.value_w"],
            Sense(t["sense"]),
            t["priority"],
        )
        for i, t in enumerate(header["targets"])
    )
    grid = None
    gh = header["grid"]
    if gh is not None:
        shape = tuple(gh["shape"])

        def mat(name: str) -> sp.csr_matrix:
            return sp.csr_matrix(
                (arrays[f"grid.{name}.data"], arrays[f"grid.{name}.indices"], arrays[f"grid.{name}.indptr"]),
                shape=shape,
            )

        grid = GridConstraints(
            sp=mat("sp"),
            sq=mat("sq") if gh["q"] else None,
            value0=arrays["grid.value0"],
            limit_lo=arrays["grid.limit_lo"],
            limit_hi=arrays["grid.limit_hi"],
            labels=tuple(gh["labels"]),
            is_voltage=arrays["grid.is_voltage"],
        )
    problem = Problem(
        der_ids=tuple(header["der_ids"]),
        flex=flex,
        cost_up=arrays["cost_up"],
        cost_down=arrays["cost_down"],
        reliability=arrays["reliability"],
        feeder=arrays["feeder"],
        bus=arrays["bus"],
        targets=targets,
        grid=grid,
        prices=arrays.get("prices"),
        price_members=arrays.get("price_members"),
        cost_q=header["cost_q"],
    )
    return problem, header["options"], digest


def replay(data: bytes) -> Solution:
    """Solve a recorded problem again with its recorded options."""
    problem, options, _ = load(data)
    return solve(problem, **options)
