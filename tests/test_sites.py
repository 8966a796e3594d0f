"""Site profiles: the shipped ones load, and every broken one is one line naming the file and the key."""
import re
import tomllib

import pytest

from harness import sites
from harness.exercises import cluster_jobs
from harness.sites import SiteError

from site_profiles import load_error, write_profile

SHIPPED = sites.SITES_DIR
# A cluster job that declares keys of its own, and one of them: the nested-key tests use it, whichever it is
OWN_JOB, OWN_KEY = next((name, key) for name, (_, job) in cluster_jobs().items() for key in job.settings)


def good_profile(**changes: str) -> str:
    """The local profile's text, with `key = value` lines replaced (value None: line removed)."""
    text = (SHIPPED / "local.toml").read_text()
    for key, line in changes.items():
        text = re.sub(rf"^{key} = .*$", line, text, count=1, flags=re.MULTILINE)
    return text


def without_jobs(text: str) -> str:
    """A profile's text without its [jobs.*] tables, so that a test can add its own."""
    return re.split(r"^\[jobs\.", text, maxsplit=1, flags=re.MULTILINE)[0]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", sites.available())
def test_each_shipped_profile_puts_its_own_values_on_every_jobs_command_line(name):
    """What a profile says reaches sbatch: its partition, account and reservation, and per job the cores of its
    [jobs.<name>] table (else the profile's), for every cluster job of the registry."""
    site = sites.load(SHIPPED / f"{name}.toml")
    raw = tomllib.loads((SHIPPED / f"{name}.toml").read_text())
    for job in cluster_jobs():
        options = site.sbatch_options(job)
        cores = raw.get("jobs", {}).get(job, {}).get("cpus_per_task", raw["cpus_per_task"])
        wanted = [f"--partition={raw['partition']}", f"--cpus-per-task={cores}"]
        wanted += [f"--{key}={raw[key]}" for key in ("account", "reservation") if raw[key]]
        assert all(option in options for option in wanted), f"{name}, job {job}: {options} lacks one of {wanted}"


def test_the_local_cluster_has_teeth():
    """A GPU job with more than one core on the local cluster, so that the cores check (SRUN_CPUS_PER_TASK) can
    fail there; and stand-in GPUs, so that torch's view is never taken for a real GPU."""
    local = sites.load(SHIPPED / "local.toml")
    cores = {name: local.job(name).cpus_per_task for name, (_, job) in cluster_jobs().items() if job.gpus}
    assert max(cores.values()) > 1, f"every local GPU job runs on one core ({cores}): the cores check cannot fail"
    assert not local.gpus_real and local.caches.prepare == "minipets"


def test_jureca_activates_the_project_before_every_login_step():
    """jutil env activate's two variables first, in the set-up of the jobs and of the venv: the caches and pip's
    cache then go to $SCRATCH, never to the home with its 10,000 files."""
    jureca = sites.load(SHIPPED / "jureca-dc.toml")
    first = jureca.setup[0]
    assert first.startswith("export PROJECT=") and "SCRATCH=" in first and jureca.venv_setup[0] == first


def test_missing_key_names_file_and_key(tmp_path):
    path = write_profile(tmp_path, "broken", good_profile(partition=""))
    assert load_error(path) == "missing key `partition`"


def test_misspelt_key_suggests_the_right_one(tmp_path):
    path = write_profile(tmp_path, "typo", good_profile(reservation='reservaton = "training2441"'))
    assert load_error(path) == "unknown key `reservaton` (did you mean `reservation`?)"


def test_misspelt_nested_key_names_its_table(tmp_path):
    text = without_jobs(good_profile()) + f"\n[jobs.{OWN_JOB}]\n{OWN_KEY}i = 1\n"
    path = write_profile(tmp_path, "nested", text)
    assert load_error(path) == (f"unknown key `jobs.{OWN_JOB}.{OWN_KEY}i` "
                                f"(did you mean `jobs.{OWN_JOB}.{OWN_KEY}`?)")


def test_unknown_job_names_the_known_ones(tmp_path):
    path = write_profile(tmp_path, "jobs", without_jobs(good_profile()) + f"\n[jobs.{OWN_JOB}z]\nenv = {{}}\n")
    assert load_error(path) == f"unknown job `jobs.{OWN_JOB}z` (did you mean `jobs.{OWN_JOB}`?)"


def test_job_knobs_must_be_strings(tmp_path):
    path = write_profile(tmp_path, "knobs",
                         without_jobs(good_profile()) + f"\n[jobs.{OWN_JOB}]\nenv = {{ EPOCHS = 3 }}\n")
    assert load_error(path) == f'key `jobs.{OWN_JOB}.env` must map names to strings (quote numbers: "2")'


def test_wrong_type_is_one_line(tmp_path):
    path = write_profile(tmp_path, "typed", good_profile(cpus_per_task='cpus_per_task = "two"'))
    assert "`cpus_per_task` must be an integer, not 'two'" in load_error(path)


def test_unknown_site_lists_the_profiles(tmp_path):
    write_profile(tmp_path, "alpha", good_profile())
    write_profile(tmp_path, "beta", good_profile())
    with pytest.raises(SiteError) as error:
        sites.resolve("gamma", sites_dir=tmp_path)
    assert one_line(error) == f"unknown site `gamma`: profiles in {tmp_path} are alpha, beta"


def test_host_pattern_picks_the_profile(tmp_path):
    write_profile(tmp_path, "alpha", good_profile(hosts='hosts = ["*.alpha.example"]'))
    write_profile(tmp_path, "beta", good_profile(hosts='hosts = ["betalogin*"]'))
    assert sites.resolve(None, sites_dir=tmp_path, hosts=["betalogin03"]).name == "beta"
    assert sites.resolve(None, sites_dir=tmp_path, hosts=["x", "n1.alpha.example"]).name == "alpha"
    with pytest.raises(SiteError) as error:
        sites.resolve(None, sites_dir=tmp_path, hosts=["laptop"])
    assert "no site profile matches this host (laptop)" in one_line(error) and "alpha, beta" in str(error.value)


def test_jureca_login_nodes_match_the_jureca_profile():
    assert sites.resolve(None, hosts=["jrlogin05.jureca"]).name == "jureca-dc"
    assert sites.resolve(None, hosts=["jrlogin01"]).name == "jureca-dc"


def test_site_option_on_the_command_line_is_a_usage_error(pytester_free_run):
    result = pytester_free_run("--cluster", "--site", "nowhere")
    assert result.returncode == 4
    assert "unknown site `nowhere`: profiles in" in result.stderr and "jureca-dc, local" in result.stderr


@pytest.fixture
def pytester_free_run():
    """Runs this repository's pytest in a subprocess (the plugin is loaded as in real use)."""
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "tests/cluster"],
                              cwd=sites.ROOT, capture_output=True, text=True, timeout=120)
    return run


def test_paths_expand_like_a_shell(monkeypatch):
    site = sites.load(SHIPPED / "local.toml")
    monkeypatch.setenv("HOME", "/home/student")
    monkeypatch.setenv("USER", "student")
    monkeypatch.setenv("PROJECT_training2441", "/p/project1/training2441")
    assert site.expand(site.course_venv) == "/p/project1/training2441/student/course-check/venv-template"
    assert site.expand("~/x") == "/home/student/x" and site.expand("$HOME/x") == "/home/student/x"
    monkeypatch.delenv("COURSE_SLURM_STATE", raising=False)
    assert site.expand("${COURSE_SLURM_STATE:-/tmp/course-slurm}/x") == "/tmp/course-slurm/x"
    monkeypatch.setenv("COURSE_SLURM_STATE", "/srv/slurm")
    assert site.expand("${COURSE_SLURM_STATE:-/tmp/course-slurm}/x") == "/srv/slurm/x"
    assert site.expand("{root}/x/{out}", out="/o") == f"{sites.ROOT}/x//o"


def test_an_unset_variable_is_one_line_not_a_folder_named_after_it(monkeypatch):
    """Outside a member's login, `$SCRATCH_training2441/...` would otherwise become a folder of that literal name."""
    site = sites.load(SHIPPED / "jureca-dc.toml")
    monkeypatch.delenv("SCRATCH_training2441", raising=False)
    with pytest.raises(SiteError) as error:
        site.expand(site.caches.fastai_home)
    assert "needs $SCRATCH_training2441, which is not set here" in one_line(error)
    assert "jutil env activate -p training2441" in str(error.value)


def test_jureca_keeps_code_in_project_and_data_in_scratch_never_in_the_home(monkeypatch):
    """JSC's $HOME holds at most 11,000 files (JSC FAQ "What data quotas do exist"): the course venv goes to $PROJECT,
    the caches and the packed data to $SCRATCH, as the book's "Where your files go" says."""
    monkeypatch.setenv("HOME", "/p/home/jusers/student/jureca")
    monkeypatch.setenv("USER", "student")
    monkeypatch.setenv("PROJECT_training2441", "/p/project1/training2441")
    monkeypatch.setenv("SCRATCH_training2441", "/p/scratch/training2441")
    site = sites.load(SHIPPED / "jureca-dc.toml")
    assert site.expand(site.course_venv).startswith("/p/project1/training2441/student/")
    data = [site.caches.fastai_home, site.caches.torch_home]
    data += [value for name in cluster_jobs() for key, value in site.job(name).values.items() if key.endswith("_dir")]
    assert all(site.expand(path).startswith("/p/scratch/training2441/student/") for path in data), data
