"""What the harness learns from inside a course program, without a line of it in the student's file.

The harness puts this folder first on PYTHONPATH of the programs it runs (batch jobs and local checks), so Python
loads this module at start-up. Students never see it; their scripts stay the course's scripts. It does two things,
each switched on by an environment variable:

COURSE_REPORT_DIR=DIR  at exit, write DIR/report-<host>-<pid>.json: what the process got (cores it may run on, GPUs
                       Slurm gave it, its host, its Slurm and torchrun ranks), the internet it tried to reach, the
                       uncaught exception it died of, the files it wrote; and what the exercises' probes recorded:
                       each harness/exercises/<key>/probe.py declares HOOKS, after-import hooks called as
                       hook(module, report, detail) that add their own keys to the report (a fastai training's
                       figures, torch.distributed's group, torch.save calls, DataLoader passes ...).
COURSE_OFFLINE=1       refuse every name lookup and connection that leaves this machine, as a compute node without
                       internet does: the stand-in for `unshare -n` where there is no root.
COURSE_CUDA_STANDIN=1  where torch finds no CUDA (the test cluster's GPUs are stand-ins, a site with gpus_real =
                       false), torch behaves as if the GPUs that CUDA_VISIBLE_DEVICES names were real: as many
                       devices as it lists (cuda:0 is its first entry), tensors and modules sent to one of them stay
                       on the CPU, and an ordinal past them fails as CUDA does ("CUDA error: invalid device
                       ordinal"); nccl becomes gloo. So a task that picks a GPU it cannot see fails here as on a
                       GPU node. The report's `cuda_standin` says what the process saw and asked for.
COURSE_REPORT_DETAIL   more, for the checks that need it (comma-separated), handed to the probes too (a probe's
                       `dataloaders` records the indices each DataLoader pass handed out); `reads=GLOB` writes the
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
import glob
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
    "written": [],  # files the process opened for writing (outside /dev, /proc and the report folder)
    "float64": False,  # with COURSE_FLOAT64=1, once torch computes in float64
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


def _address(text: str):
    """The IP address `text` spells (a zone such as `%eth0` dropped), None for a host name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _is_loopback(address: str) -> bool:
    ip = _address(address)
    return ip is not None and ip.is_loopback


def _is_global(address: str) -> bool:
    ip = _address(address)
    return ip is not None and ip.is_global


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
    # an address needs no lookup; a connection to it is noted (and refused offline) by connect
    if _address(str(name)) is not None:
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


# --- the exercises' probes: harness/exercises/<key>/probe.py ------------------------------------------------------

def _probes() -> dict:
    """What the exercises ask to be recorded: the HOOKS of every harness/exercises/<key>/probe.py (module name ->
    hook(module, report, detail)), loaded by file so that no harness package is imported into the program."""
    found: dict = {}
    pattern = os.path.join(os.path.dirname(_HERE), "exercises", "*", "probe.py")
    for number, path in enumerate(sorted(glob.glob(pattern))):
        try:
            spec = importlib.util.spec_from_file_location(f"_course_probe_{number}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for name, hook in module.HOOKS.items():
                found.setdefault(name, []).append(hook)
        except Exception:  # noqa: BLE001 (a broken probe records nothing; the program runs on)
            pass
    return found


def _with_probes(first, probes: list):
    """One after-import hook: the watcher's own (if any), then each probe with the report and the details asked."""
    def hook(module) -> None:
        for each in ([first] if first is not None else []) + [lambda m, p=p: p(m, _report, _DETAIL) for p in probes]:
            try:
                each(module)
            except Exception:  # noqa: BLE001
                pass
    return hook


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
    _hooks["torch"] = _after_torch
    for _name, _hooked in _probes().items():
        _hooks[_name] = _with_probes(_hooks.get(_name), _hooked)
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
