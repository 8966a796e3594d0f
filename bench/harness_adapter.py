"""The one place that knows how to drive harness/slurm.py (and harness/sites.py) for the cluster-overhead part."""
from __future__ import annotations

import time
from pathlib import Path

SITE = "local"  # the profile of slurm/local-cluster: partition, reservation, CPUs per task


def check() -> None:
    """ImportError (naming what is missing) unless harness/slurm.py offers submit, wait and a counting Poller."""
    from harness import slurm

    missing = [n for n in ("submit", "wait", "Poller") if not hasattr(slurm, n)]
    if missing:
        raise ImportError(f"harness.slurm lacks {', '.join(missing)}")


def site():
    """The local site profile, or None when harness/sites.py cannot give one."""
    try:
        from harness import sites

        return sites.resolve(SITE)
    except Exception:  # a missing or broken profile: submit with the cluster's defaults
        return None


def sbatch_options() -> list[str]:
    """The same command-line options the harness adds, for the plain `sbatch --wait` comparisons."""
    profile = site()
    return profile.sbatch_options() if profile is not None else []


def submit_and_wait(script: Path, names: list[str], tag: str, folder: Path) -> tuple[float, int, list[str], list[str]]:
    """Submit `script` once per name, wait for every verdict; (seconds, poll calls, final states, job ids)."""
    from harness import slurm

    profile = site()
    poller = slurm.Poller()
    start = time.perf_counter()
    jobs = [slurm.submit(script, name=name, tag=tag, chdir=folder, results=folder / "api", site=profile)
            for name in names]
    try:
        slurm.wait(jobs, poller=poller, log=lambda line: None)
    finally:
        slurm.cancel(jobs, tag=tag)
    return time.perf_counter() - start, poller.calls, [job.state for job in jobs], [job.job_id for job in jobs]
