"""Site profiles: what differs between clusters (account, partition, modules, bars) as data, not code.

`slurm/sites/<name>.toml` is read into a typed `Site`. A broken profile is one line naming the file and the
key to fix, with the closest known key for a misspelling, so an instructor never reads a traceback.
"""
from __future__ import annotations

import difflib
import fnmatch
import os
import pwd
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.exercises import cluster_jobs
from harness.references import Reference, parse as parse_references

ROOT = Path(__file__).resolve().parent.parent
SITES_DIR = ROOT / "slurm" / "sites"


class SiteError(ValueError):
    """A profile that cannot be used; the message is one line that says what to fix."""


@dataclass(frozen=True)
class JobSettings:
    """A site's settings of one cluster job ([jobs.<name>]): the generic ones and the job's own (`values`)."""
    cpus_per_task: int
    env: dict[str, str] = field(default_factory=dict)  # environment of the job (the programs' knobs)
    sbatch_args: list[str] = field(default_factory=list)  # more sbatch options for this job only
    values: dict[str, Any] = field(default_factory=dict)  # the job's own keys (ClusterJob.settings), defaults filled
    references: dict[str, Reference] = field(default_factory=dict)  # [jobs.<name>.reference]

    def as_dict(self) -> dict[str, Any]:
        return {"cpus_per_task": self.cpus_per_task, "env": dict(self.env), "sbatch_args": list(self.sbatch_args),
                **self.values}


@dataclass(frozen=True)
class Caches:
    """How the course's data and weight caches (the Pets pictures, pretrained weights, used by several exercises)
    are filled before submitting, and where they live."""
    prepare: str  # "prefetch" (the lesson's own download step, on a login node with internet) or "minipets" (stand-ins)
    fastai_home: str
    torch_home: str
    block_network: bool


@dataclass(frozen=True)
class Site:
    name: str
    path: Path
    hosts: list[str]
    account: str
    partition: str
    reservation: str
    cpus_per_task: int
    gpus_per_node: int
    gpus_real: bool
    time_margin_s: int
    pending_limit_s: int
    setup: list[str]
    course_venv: str
    caches: Caches
    jobs: dict[str, JobSettings]
    sbatch_args: list[str] = field(default_factory=list)
    venv_setup: list[str] = field(default_factory=list)

    def sbatch_options(self, job: str | None = None) -> list[str]:
        """The command-line overrides of the scripts' #SBATCH lines for this site (and for `job`, if given)."""
        settings = self.job(job) if job else None
        cpus = settings.cpus_per_task if settings else self.cpus_per_task
        options = [f"--partition={self.partition}", f"--cpus-per-task={cpus}"]
        if self.account:
            options.append(f"--account={self.account}")
        if self.reservation:
            options.append(f"--reservation={self.reservation}")
        return options + list(self.sbatch_args) + (list(settings.sbatch_args) if settings else [])

    def expand(self, text: str, **places: str | Path) -> str:
        """A path of the profile: `{root}` is the repository (and `{name}` any of `places`); `$VAR` and `~` as a shell
        would. A variable that is not set is an error, not a folder named `$VAR`: the JSC profile keeps the course
        venv in `$PROJECT_<project>` and the caches in `$SCRATCH_<project>`, which only a member's login has."""
        for name, value in {"root": ROOT, **places}.items():
            text = text.replace("{" + name + "}", str(value))
        env = {"USER": pwd.getpwuid(os.geteuid()).pw_name, **os.environ}  # a batch shell may lack $USER
        text = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], text)  # ${VAR:-default}
        unset = [m[1] or m[2] for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", text) if (m[1] or m[2]) not in env]
        if unset:
            raise SiteError(f"{self.path}: `{text}` needs ${unset[0]}, which is not set here: log in as a member of "
                            f"the course project (at JSC `jutil env activate -p {self.account or '<project>'}` sets "
                            f"$PROJECT and $SCRATCH; $PROJECT_<project> is set at login)")
        text = re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env[m[1] or m[2]], text)
        return os.path.expanduser(text)

    def job(self, name: str) -> JobSettings:
        """The settings of job `name`; a job the profile does not mention gets the defaults."""
        if name in self.jobs:
            return self.jobs[name]
        return JobSettings(cpus_per_task=self.cpus_per_task,
                           values={key: default for key, (_, default) in _job_schemas().get(name, {}).items()})


# key -> (type, required); optional keys carry their default
_TOP: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "hosts": (list, ...), "account": (str, ...), "partition": (str, ...),
    "reservation": (str, ...), "cpus_per_task": (int, ...), "gpus_per_node": (int, ...), "gpus_real": (bool, ...),
    "time_margin_s": (int, ...), "pending_limit_s": (int, ...), "setup": (list, ...), "course_venv": (str, ...),
    "caches": (dict, ...), "jobs": (dict, ...), "sbatch_args": (list, []), "venv_setup": (list, []),
}
_CACHES: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "prepare": (str, ...), "fastai_home": (str, ...), "torch_home": (str, ...), "block_network": (bool, ...),
}
_JOB: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "cpus_per_task": (int, None), "env": (dict, {}), "sbatch_args": (list, []), "reference": (dict, {}),
}
PREPARE_MODES = ("prefetch", "minipets")
_KINDS = {int: "an integer", str: "a string", list: "a list", bool: "true or false", dict: "a table",
          float: "a number"}


def _job_schemas() -> dict[str, dict[str, tuple[Any, Any]]]:
    """Each cluster job's own keys, as its exercise module declares them (harness/exercises/)."""
    return {name: dict(job.settings) for name, (_, job) in cluster_jobs().items()}


def _job_figures() -> dict[str, dict[str, str]]:
    """The figures each cluster job reports that a profile may hold to a reference: name -> which is better."""
    return {name: dict(job.figures) for name, (_, job) in cluster_jobs().items()}


def _checked(table: dict[str, Any], schema: dict[str, tuple[Any, Any]], where: str, path: Path) -> dict[str, Any]:
    """Values of `table` per `schema`; the first problem raises one line naming file and key."""
    unknown = [key for key in table if key not in schema]
    missing = [key for key, (_, default) in schema.items() if default is ... and key not in table]
    for key in unknown:
        close = difflib.get_close_matches(key, [k for k in schema if k not in table] or list(schema), n=1)
        hint = f" (did you mean `{where}{close[0]}`?)" if close else f" (known keys: {', '.join(schema)})"
        raise SiteError(f"{path}: unknown key `{where}{key}`{hint}")
    if missing:
        raise SiteError(f"{path}: missing key `{where}{missing[0]}`")
    values = {}
    for key, (kind, default) in schema.items():
        value = table.get(key, default)
        if kind is float:
            kind = (int, float)
        if key in table and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            wanted = _KINDS.get(kind, "a number")
            raise SiteError(f"{path}: key `{where}{key}` must be {wanted}, not {value!r}")
        values[key] = list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value
    return values


def load(path: Path | str) -> Site:
    """Read one profile file into a `Site`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SiteError(f"{path}: no such site profile") from None
    except tomllib.TOMLDecodeError as error:
        raise SiteError(f"{path}: not valid TOML ({error})") from None
    top = _checked(data, _TOP, "", path)
    caches = Caches(**_checked(top.pop("caches"), _CACHES, "caches.", path))
    if caches.prepare not in PREPARE_MODES:
        raise SiteError(f"{path}: key `caches.prepare` must be one of {', '.join(PREPARE_MODES)}, not {caches.prepare!r}")
    jobs = {}
    schemas, figures = _job_schemas(), _job_figures()
    for name, table in top.pop("jobs").items():
        if name not in schemas:
            close = difflib.get_close_matches(name, list(schemas), n=1)
            hint = f"did you mean `jobs.{close[0]}`?" if close else f"known jobs: {', '.join(sorted(schemas))}"
            raise SiteError(f"{path}: unknown job `jobs.{name}` ({hint})")
        if not isinstance(table, dict):
            raise SiteError(f"{path}: key `jobs.{name}` must be a table ([jobs.{name}])")
        values = _checked(table, {**_JOB, **schemas[name]}, f"jobs.{name}.", path)
        env = values.pop("env")
        if not all(isinstance(v, str) for v in env.values()):
            raise SiteError(f"{path}: key `jobs.{name}.env` must map names to strings (quote numbers: \"2\")")
        try:
            held = parse_references(values.pop("reference"), figures[name], f"jobs.{name}.reference")
        except ValueError as error:
            raise SiteError(f"{path}: {error}") from None
        cpus = values.pop("cpus_per_task")
        jobs[name] = JobSettings(cpus_per_task=top["cpus_per_task"] if cpus is None else cpus, env=env,
                                 sbatch_args=values.pop("sbatch_args"), values=values, references=held)
    return Site(name=path.stem, path=path, caches=caches, jobs=jobs, **top)


def available(sites_dir: Path = SITES_DIR) -> list[str]:
    return sorted(p.stem for p in sites_dir.glob("*.toml"))


def _host_names() -> list[str]:
    return [name for name in {socket.getfqdn(), socket.gethostname()} if name]


def resolve(name: str | None, sites_dir: Path = SITES_DIR, hosts: list[str] | None = None) -> Site:
    """The profile `--site NAME`, or without a name the one whose host pattern matches this machine."""
    names = available(sites_dir)
    listing = ", ".join(names) or "none"
    if name is not None:
        if name not in names:
            raise SiteError(f"unknown site `{name}`: profiles in {sites_dir} are {listing}")
        return load(sites_dir / f"{name}.toml")
    hosts = _host_names() if hosts is None else hosts
    for candidate in names:
        site = load(sites_dir / f"{candidate}.toml")
        if any(fnmatch.fnmatch(host, pattern) for host in hosts for pattern in site.hosts):
            return site
    raise SiteError(f"no site profile matches this host ({', '.join(hosts)}): choose one with --site NAME "
                    f"from {listing}")
