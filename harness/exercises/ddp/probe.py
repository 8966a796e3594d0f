"""Exercise 5's probe: what harness/jobsite/sitecustomize.py records inside train_ddp.py for the checks, without a
line in the student's file. Loaded by file inside the program (it imports nothing of the harness); read back by
harness.exercises.ddp.runs and checks through `Report.probed`.

`dist`: the process group it joined (backend, rank, world size, the timeout it gave, whether it left the group);
`saves`: every torch.save (path, RANK); `loader_passes` (with COURSE_REPORT_DETAIL=dataloaders): the sample indices
of each DataLoader pass, which pictures a rank trained on.
"""
from __future__ import annotations

import os
import time


def record_calls(module, name: str, *, before=None, after=None) -> None:
    """`module.name`, if it has one, replaced by itself plus records: `before(*args, **kwargs)` ahead of each call,
    `after(seconds, *args, **kwargs)` behind each call that returned (one that fails records nothing: the program
    runs on as without the probe). `__wrapped__` keeps the original."""
    original = getattr(module, name, None)
    if original is None:
        return

    def recorded(*args, **kwargs):
        started = time.time()
        if before is not None:
            before(*args, **kwargs)
        result = original(*args, **kwargs)
        if after is not None:
            try:
                after(time.time() - started, *args, **kwargs)
            except Exception:  # noqa: BLE001
                pass
        return result

    recorded.__wrapped__ = original
    setattr(module, name, recorded)


def after_torch(torch, report: dict, detail: list) -> None:
    saves = report.setdefault("saves", [])

    def saving(obj, f, *args, **kwargs):
        saves.append({"path": os.path.abspath(str(f)) if isinstance(f, (str, os.PathLike)) else repr(f),
                      "rank": os.environ.get("RANK")})

    record_calls(torch, "save", before=saving)


def after_torch_distributed(dist, report: dict, detail: list) -> None:
    if getattr(dist, "init_process_group", None) is None:
        return

    def joined(seconds, *args, **kwargs):
        timeout = kwargs.get("timeout")
        report["dist"] = {"backend": str(dist.get_backend()), "rank": dist.get_rank(),
                          "world_size": dist.get_world_size(), "seconds": round(seconds, 3),
                          "timeout_s": timeout.total_seconds() if hasattr(timeout, "total_seconds") else None,
                          "destroyed": False}

    def left(seconds, *args, **kwargs):
        if report.get("dist") is not None:
            report["dist"]["destroyed"] = True

    record_calls(dist, "init_process_group", after=joined)
    record_calls(dist, "destroy_process_group", after=left)


def after_dataloader(loader_module, report: dict, detail: list) -> None:
    """With COURSE_REPORT_DETAIL=dataloaders: each pass over a DataLoader (an epoch) gets a list of the sample indices
    its sampler handed out, in `loader_passes`."""
    if "dataloaders" not in detail:
        return
    passes = report.setdefault("loader_passes", [])
    iterator = loader_module._BaseDataLoaderIter
    init, reset, next_index = iterator.__init__, iterator._reset, iterator._next_index

    def recorded_init(self, loader):
        passes.append([])
        return init(self, loader)

    def recorded_reset(self, loader, first_iter=False):  # persistent workers start the next pass here
        if not first_iter:
            passes.append([])
        return reset(self, loader, first_iter)

    def recorded_next_index(self):
        index = next_index(self)
        try:
            passes[-1].extend(int(i) for i in (index if isinstance(index, (list, tuple))
                                                                 else [index]))
        except Exception:  # noqa: BLE001
            pass
        return index

    iterator.__init__, iterator._reset, iterator._next_index = recorded_init, recorded_reset, recorded_next_index


HOOKS = {"torch": after_torch, "torch.distributed": after_torch_distributed,
         "torch.utils.data.dataloader": after_dataloader}
