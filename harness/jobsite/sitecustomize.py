"""What the harness learns from inside a course program, without a line of it in the student's file.

The harness puts this folder first on PYTHONPATH of the programs it runs (batch jobs and local checks), so Python
loads this module at start-up. Students never see it; their scripts stay the course's scripts. It does two things,
each switched on by an environment variable:

COURSE_REPORT_DIR=DIR  at exit, write DIR/report-<host>-<pid>.json: what the process got (cores it may run on, GPUs
                       Slurm gave it, its host, its Slurm and torch.distributed ranks), the internet it tried to
                       reach, the uncaught exception it died of, the files torch.save wrote, and for a fastai
                       training its figures (seconds per epoch, images per second, metrics per epoch).
COURSE_OFFLINE=1       refuse every name lookup and connection that leaves this machine, as a compute node without
                       internet does: the stand-in for `unshare -n` where there is no root.
COURSE_CUDA_STANDIN=1  where torch finds no CUDA (the test cluster's GPUs are stand-ins, a site with gpus_real =
                       false), torch behaves as if the GPUs that CUDA_VISIBLE_DEVICES names were real: as many
                       devices as it lists (cuda:0 is its first entry), tensors and modules sent to one of them stay
                       on the CPU, and an ordinal past them fails as CUDA does ("CUDA error: invalid device
                       ordinal"); nccl becomes gloo. So a task that picks a GPU it cannot see fails here as on a
                       GPU node. The report's `cuda_standin` says what the process saw and asked for.
COURSE_REPORT_DETAIL   more, for the checks that need it (comma-separated): `dataloaders` records the indices each
                       PyTorch DataLoader pass handed out (which samples a rank trained on); `reads=GLOB` writes the
                       name of every file matching GLOB that the process, or a DataLoader worker forked from it,
                       opens, at once, to DIR/read-<host>-<rank>-<pid>.txt (forked workers never reach atexit).
COURSE_FLOAT64=1       compute in float64: torch's default dtype, and `Tensor.float()` casts to float64. Only for
                       local checks that compare two trainings that must be the same (DDP against one process):
                       in float64 the order of float sums cannot hide a mistake, and the student's file stays as is.

Then the next sitecustomize on the path (the system's own, if any) is loaded, as if this one were not here.
Everything here is careful never to break the program it watches: a failure of the watcher is silent.
"""
from __future__ import annotations

import atexit
import fnmatch
import importlib.abc
import importlib.machinery
import importlib.util
import ipaddress
import json
import os
import socket
import sys
import time

_REPORT_DIR = os.path.abspath(os.environ["COURSE_REPORT_DIR"]) if os.environ.get("COURSE_REPORT_DIR") else ""
_OFFLINE = os.environ.get("COURSE_OFFLINE", "") == "1"
_DETAIL = [item.strip() for item in os.environ.get("COURSE_REPORT_DETAIL", "").split(",") if item.strip()]
_READS = next((item.split("=", 1)[1] for item in _DETAIL if item.startswith("reads=")), "")
_FLOAT64 = os.environ.get("COURSE_FLOAT64", "") == "1"
_RANK = os.environ.get("SLURM_PROCID") or os.environ.get("RANK") or "0"
_CUDA_STANDIN = os.environ.get("COURSE_CUDA_STANDIN", "") == "1"
_HERE = os.path.dirname(os.path.abspath(__file__))

_report: dict = {
    "pid": os.getpid(),
    "host": socket.gethostname(),
    "argv": list(sys.argv),
    "started": time.time(),
    "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "slurm": {k.lower().split("_", 1)[1]: v for k, v in os.environ.items()
              if k in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID",
                       "SLURM_NTASKS", "SLURM_CPUS_PER_TASK", "SLURMD_NODENAME", "SLURM_JOB_NODELIST",
                       "SLURM_JOB_GPUS")},
    "rank": {k.lower(): os.environ[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE") if k in os.environ},
    "network": [],
    "exception": None,
    "saves": [],
    "dist": None,
    "fits": [],
    "written": [],  # files the process opened for writing (outside /dev, /proc and the report folder)
    "float64": False,  # with COURSE_FLOAT64=1, once torch computes in float64
    "loader_passes": [],  # with COURSE_REPORT_DETAIL=dataloaders: the sample indices of each DataLoader pass
    "cuda_standin": None,  # with COURSE_CUDA_STANDIN=1 and no CUDA: {"devices", "asked", "refused", "backend"}
}


# --- the network: what leaves this machine ----------------------------------------------------------------------

def _loopback_names() -> set[str]:
    """Names this machine resolves to loopback by itself (/etc/hosts), plus localhost."""
    names = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
    try:
        with open("/etc/hosts") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                if len(fields) > 1 and _is_loopback(fields[0]):
                    names.update(name.lower() for name in fields[1:])
    except OSError:
        pass
    return names


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_global(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return False


def _note(what: str) -> None:
    if what not in _report["network"] and len(_report["network"]) < 50:
        _report["network"].append(what)


_LOCAL_NAMES = _loopback_names()
_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or _is_loopback(str(name)) or str(name).lower() in _LOCAL_NAMES:
        return _real_getaddrinfo(host, *args, **kwargs)
    try:
        ipaddress.ip_address(str(name).split("%", 1)[0])
        literal = True
    except ValueError:
        literal = False
    if literal:  # an address needs no lookup; a connection to it is noted (and refused offline) by connect
        return _real_getaddrinfo(host, *args, **kwargs)
    if _OFFLINE:
        _note(f"lookup {name}")
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    try:
        found = _real_getaddrinfo(host, *args, **kwargs)
    except OSError:
        _note(f"lookup {name} (failed)")
        raise
    if any(_is_global(entry[4][0]) for entry in found if entry[0] in (socket.AF_INET, socket.AF_INET6)):
        _note(f"lookup {name}")
    return found


def _check_address(sock: socket.socket, address) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    host = str(address[0])
    if _OFFLINE and not _is_loopback(host) and host.lower() not in _LOCAL_NAMES:
        _note(f"connect {host}:{address[1]}")
        raise OSError(101, "Network is unreachable")
    if _is_global(host):
        _note(f"connect {host}:{address[1]}")


def _guarded_connect(self, address):
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    _check_address(self, address)
    return _real_connect_ex(self, address)


# --- after-import hooks: wrap a library's function once the library is loaded ----------------------------------

class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `hooks[name](module)` right after the module `name` has been executed."""

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks

    def find_spec(self, name, path, target=None):
        if name not in self.hooks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, hook = loader.exec_module, self.hooks.pop(name)

        def exec_module(module):
            run(module)
            try:
                hook(module)
            except Exception:  # noqa: BLE001 (the watcher must never break the program)
                pass

        loader.exec_module = exec_module
        return spec


def _after_urllib_request(request) -> None:
    request.getproxies = lambda: {}


def _after_torch(torch) -> None:
    save = torch.save

    def recorded_save(obj, f, *args, **kwargs):
        _report["saves"].append({"path": os.path.abspath(str(f)) if isinstance(f, (str, os.PathLike)) else repr(f),
                                 "rank": os.environ.get("RANK")})
        return save(obj, f, *args, **kwargs)

    recorded_save.__wrapped__ = save
    torch.save = recorded_save
    if _CUDA_STANDIN and not torch.cuda.is_available():
        _cuda_standin(torch)


def _visible_gpus() -> int:
    """How many devices CUDA makes of CUDA_VISIBLE_DEVICES: its entries up to the first that is no device number
    (psslurm appends spaces to the value it sets: "0,1,2,3     " is four)."""
    count = 0
    for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(","):
        if not entry.strip().isdigit():
            break
        count += 1
    return count


def _cuda_standin(torch) -> None:
    """COURSE_CUDA_STANDIN=1 where torch has no CUDA: CUDA_VISIBLE_DEVICES's devices, computed on by the CPU."""
    devices = _visible_gpus()
    state = {"devices": devices, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "asked": [], "refused": None,
             "backend": None}
    _report["cuda_standin"] = state
    current = [0]

    def ordinal(index) -> int:
        index = current[0] if index is None else int(index)
        if index not in state["asked"]:
            state["asked"].append(index)
        if not 0 <= index < devices:
            state["refused"] = f"cuda:{index}"
            raise RuntimeError("CUDA error: invalid device ordinal (this process sees "
                               f"{devices} GPU(s): CUDA_VISIBLE_DEVICES={state['visible']!r}; stand-in GPUs)")
        return index

    def on_cpu(device):
        """`device` (a torch.device, its name, or a bare ordinal) as the stand-in places it: cuda:N on the CPU."""
        if isinstance(device, bool) or not isinstance(device, (torch.device, str, int)):
            return device
        as_device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        if as_device.type != "cuda":
            return device
        ordinal(as_device.index)
        return torch.device("cpu")

    def wrap_to(real):
        def to(self, *args, **kwargs):
            if args:
                args = (on_cpu(args[0]), *args[1:])
            if "device" in kwargs:
                kwargs["device"] = on_cpu(kwargs["device"])
            return real(self, *args, **kwargs)
        to.__wrapped__ = real
        return to

    def cuda(self, device=None, *args, **kwargs):
        ordinal(torch.device(device).index if isinstance(device, (str, torch.device)) else device)
        return self

    def set_device(device) -> None:
        index = device.index if isinstance(device, torch.device) else (
            torch.device(device).index if isinstance(device, str) else device)
        current[0] = ordinal(index)

    def index_of(device=None):
        if isinstance(device, (str, torch.device)):
            return torch.device(device).index
        return device

    torch.Tensor.to, torch.nn.Module.to = wrap_to(torch.Tensor.to), wrap_to(torch.nn.Module.to)
    torch.Tensor.cuda = torch.nn.Module.cuda = cuda
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: devices
    torch.cuda.current_device = lambda: current[0]
    torch.cuda.set_device = set_device
    torch.cuda.synchronize = lambda device=None: ordinal(index_of(device)) and None
    torch.cuda.get_device_name = lambda device=None: f"stand-in GPU {ordinal(index_of(device))} (on the CPU)"

    dist = getattr(torch, "distributed", None)
    init = getattr(dist, "init_process_group", None)
    if init is not None:
        def init_process_group(backend=None, *args, **kwargs):
            state["backend"] = str(backend)
            return init("gloo" if str(backend).lower() == "nccl" else backend, *args, **kwargs)
        init_process_group.__wrapped__ = init
        dist.init_process_group = init_process_group
    wrapper = getattr(getattr(torch.nn, "parallel", None), "DistributedDataParallel", None)
    if wrapper is not None:
        wrapper_init = wrapper.__init__

        def wrapper_on_cpu(self, module, device_ids=None, output_device=None, *args, **kwargs):
            for device in list(device_ids or []) + ([output_device] if output_device is not None else []):
                on_cpu(device)
            return wrapper_init(self, module, None, None, *args, **kwargs)
        wrapper.__init__ = wrapper_on_cpu


def _after_torch_in_float64(torch) -> None:
    torch.set_default_dtype(torch.float64)
    torch.Tensor.float = torch.Tensor.double
    _report["float64"] = True  # the check that compares runs knows the switch took
    if _after_torch_before_float64 is not None:
        _after_torch_before_float64(torch)


def _after_torch_distributed(dist) -> None:
    init = getattr(dist, "init_process_group", None)
    if init is None:
        return

    def recorded_init(*args, **kwargs):
        started = time.time()
        result = init(*args, **kwargs)
        try:
            timeout = kwargs.get("timeout")
            _report["dist"] = {"backend": str(dist.get_backend()), "rank": dist.get_rank(),
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
        if _report["dist"] is not None:
            _report["dist"]["destroyed"] = True
        return result

    recorded_destroy.__wrapped__ = destroy
    dist.destroy_process_group = recorded_destroy


def _after_fastai_learner(learner_module) -> None:
    from fastai.callback.core import Callback

    class CourseFigures(Callback):
        """Seconds per epoch, training images per second, metrics per epoch: for the harness's verdict."""
        order = 99  # after the Recorder has written the epoch's values

        def before_fit(self):
            self.figures = {"epochs": [], "device": str(getattr(self.dls, "device", "")), "train_images": 0,
                        "train_seconds": 0.0, "gpu_name": None}
            device = getattr(self.dls, "device", None)
            if device is not None and getattr(device, "type", "") == "cuda":
                import torch
                self.figures["gpu_name"] = torch.cuda.get_device_name(device)
            self.figures["labels"] = self.some_labels()
            _report["fits"].append(self.figures)

        def some_labels(self, count=40):
            """[file name, label] of the first training items: what the student's label function made of them."""
            try:
                data = self.dls.train_ds
                vocab = list(self.dls.vocab)
                return [[os.path.basename(str(data.items[i])), str(vocab[int(data.tls[1][i])])]
                        for i in range(min(count, len(data.items)))]
            except Exception:  # noqa: BLE001 (another kind of data set: no labels to show)
                return []

        def before_epoch(self):
            self.epoch_started = time.perf_counter()

        def before_train(self):
            self.train_started = time.perf_counter()

        def after_batch(self):
            if self.training:
                self.figures["train_images"] += len(self.learn.yb[0]) if self.learn.yb else 0

        def after_train(self):
            self.figures["train_seconds"] += time.perf_counter() - self.train_started

        def after_epoch(self):
            names = [str(n) for n in self.recorder.metric_names]
            values = self.recorder.log
            row = {name: (float(value) if isinstance(value, (int, float)) or hasattr(value, "__float__")
                          else str(value)) for name, value in zip(names, values) if name not in ("epoch", "time")}
            row["seconds"] = round(time.perf_counter() - self.epoch_started, 3)
            self.figures["epochs"].append(row)

    original = learner_module.Learner.__init__

    def init_with_figures(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            self.add_cb(CourseFigures())
        except Exception:  # noqa: BLE001
            pass

    learner_module.Learner.__init__ = init_with_figures


# --- files: what the process wrote, and (on request) which files it read --------------------------------------------

_read_log = {"pid": None, "fd": None}


def _audit(event, args) -> None:
    if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    try:
        path = os.path.abspath(os.fsdecode(args[0]))
        mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))
        if writing:
            if not path.startswith(("/dev/", "/proc/", _REPORT_DIR)) and path not in _report["written"] \
                    and len(_report["written"]) < 200:
                _report["written"].append(path)
        elif _READS and fnmatch.fnmatch(os.path.basename(path), _READS):
            if _read_log["pid"] != os.getpid():  # this process, or a worker forked from it: a file of its own
                _read_log["pid"] = os.getpid()
                name = f"read-{_report['host']}-{_RANK}-{os.getpid()}.txt"
                os.makedirs(_REPORT_DIR, exist_ok=True)
                _read_log["fd"] = os.open(os.path.join(_REPORT_DIR, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                                          0o644)
            os.write(_read_log["fd"], (path + "\n").encode())
    except Exception:  # noqa: BLE001
        pass


def _after_dataloader(loader_module) -> None:
    """Each pass over a DataLoader (an epoch) gets a list of the sample indices its sampler handed out."""
    iterator = loader_module._BaseDataLoaderIter
    init, reset, next_index = iterator.__init__, iterator._reset, iterator._next_index

    def recorded_init(self, loader):
        _report["loader_passes"].append([])
        return init(self, loader)

    def recorded_reset(self, loader, first_iter=False):  # persistent workers start the next pass here
        if not first_iter:
            _report["loader_passes"].append([])
        return reset(self, loader, first_iter)

    def recorded_next_index(self):
        index = next_index(self)
        try:
            _report["loader_passes"][-1].extend(int(i) for i in (index if isinstance(index, (list, tuple))
                                                                 else [index]))
        except Exception:  # noqa: BLE001
            pass
        return index

    iterator.__init__, iterator._reset, iterator._next_index = recorded_init, recorded_reset, recorded_next_index


# --- at exit: the report ------------------------------------------------------------------------------------------

def _excepthook(kind, value, traceback) -> None:
    _report["exception"] = f"{kind.__name__}: {value}"
    _previous_excepthook(kind, value, traceback)


def _write_report() -> None:
    try:
        _report["ended"] = time.time()
        os.makedirs(_REPORT_DIR, exist_ok=True)
        path = os.path.join(_REPORT_DIR, f"report-{_report['host']}-{_report['pid']}.json")
        with open(path + ".part", "w") as out:
            json.dump(_report, out, indent=1, default=str)
        os.replace(path + ".part", path)
    except Exception:  # noqa: BLE001
        pass


def _load_next_sitecustomize() -> None:
    """The sitecustomize this one shadows (later on sys.path), run as if it had been found first."""
    here = os.path.normcase(os.path.realpath(_HERE))
    rest = [p for p in sys.path if os.path.normcase(os.path.realpath(p or os.curdir)) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 (a broken system sitecustomize is reported by Python as usual: ignore here)
        pass


if _REPORT_DIR or _OFFLINE:
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
_hooks: dict = {}
if _OFFLINE:
    # The harness also points the proxy variables at a dead port, for programs that do not ask Python for the
    # network (curl, git). Python's own downloads go direct instead, so that they fail at the name lookup exactly
    # as on a node without network ("Temporary failure in name resolution"), not at the dead proxy.
    _hooks["urllib.request"] = _after_urllib_request
if _REPORT_DIR:
    _hooks.update({"torch": _after_torch, "torch.distributed": _after_torch_distributed,
                   "fastai.learner": _after_fastai_learner})
    if "dataloaders" in _DETAIL:
        _hooks["torch.utils.data.dataloader"] = _after_dataloader
elif _CUDA_STANDIN:
    _hooks["torch"] = lambda torch: None if torch.cuda.is_available() else _cuda_standin(torch)
if _FLOAT64:
    _after_torch_before_float64 = _hooks.get("torch")
    _hooks["torch"] = _after_torch_in_float64
if _hooks:
    sys.meta_path.insert(0, _AfterImport(_hooks))
if _REPORT_DIR:
    sys.addaudithook(_audit)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    atexit.register(_write_report)
_load_next_sitecustomize()
