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


def after_torch(torch, report: dict, detail: list) -> None:
    saves = report.setdefault("saves", [])
    save = torch.save

    def recorded_save(obj, f, *args, **kwargs):
        saves.append({"path": os.path.abspath(str(f)) if isinstance(f, (str, os.PathLike)) else repr(f),
                      "rank": os.environ.get("RANK")})
        return save(obj, f, *args, **kwargs)

    recorded_save.__wrapped__ = save
    torch.save = recorded_save


def after_torch_distributed(dist, report: dict, detail: list) -> None:
    init = getattr(dist, "init_process_group", None)
    if init is None:
        return

    def recorded_init(*args, **kwargs):
        started = time.time()
        result = init(*args, **kwargs)
        try:
            timeout = kwargs.get("timeout")
            report["dist"] = {"backend": str(dist.get_backend()), "rank": dist.get_rank(),
                               "world_size": dist.get_world_size(), "seconds": round(time.time() - started, 3),
                               "timeout_s": timeout.total_seconds() if hasattr(timeout, "total_seconds") else None,
                               "destroyed": False}
        except Exception:  # noqa: BLE001
            pass
        return result

    recorded_init.__wrapped__ = init
    dist.init_process_group = recorded_init
    destroy = getattr(dist, "destroy_process_group", None)
    if destroy is None:
        return

    def recorded_destroy(*args, **kwargs):
        result = destroy(*args, **kwargs)
        if report.get("dist") is not None:
            report["dist"]["destroyed"] = True
        return result

    recorded_destroy.__wrapped__ = destroy
    dist.destroy_process_group = recorded_destroy


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
