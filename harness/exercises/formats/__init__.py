"""Exercise 4: feed the GPUs fast. Pack the pictures into HDF5 and Arrow (pack.py), read each format with a Dataset
(datasets.py), and time one pass per format by every task of a Slurm job (time_loaders.py, slurm/loaders.sbatch).

What the harness knows about it, by concern:
* `pictures`: the stand-in pictures and what every format must read back as;
* `checks`: the checks of pack.py and datasets.py, as functions that return problems (tests/test_formats.py runs
  each on the course's files and on deliberately broken copies);
* `shares`: time_loaders.py as the tasks of a simulated srun step, and the check of the tasks' shares;
* `cluster`: the cluster job `loaders`: its login-node step, its batch script's rules, its verdict;
* `fixtures`: the pytest fixtures (loaded as a pytest plugin with this package).
"""
from __future__ import annotations

from harness.exercises import BenchPart, ClusterJob, Exercise
from harness.exercises.formats.cluster import PACKED_FORMATS, check_loaders_job, prepare_loaders
from harness.exercises.formats.shares import FORMATS

EXERCISE = Exercise(
    key="formats", number=4, title="feed the GPUs fast (packed data formats)", day=2, lesson="book/data-formats.md",
    programs=("pack.py", "datasets.py", "time_loaders.py"), tests=("tests/test_formats.py",),
    bench_parts=(BenchPart("loader-formats", "harness.exercises.formats.bench"),),
    cluster_jobs=(ClusterJob(name="loaders", sbatch="loaders.sbatch", programs=("pack.py", "datasets.py",
                                                                                "time_loaders.py"),
                             check=check_loaders_job, gpus=True, needs_venv=True, prepare=prepare_loaders,
                             settings={"standin_per_breed": (int, 20), "packed_dir": (str, "")},
                             figures={f"{name}_{place}_images_per_s": "higher" for place, names in
                                      (("fs", FORMATS), ("shm", PACKED_FORMATS)) for name in names}),),
)
