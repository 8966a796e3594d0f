"""Site profiles: the shipped ones load, and every broken one is one line naming the file and the key."""
import re
from pathlib import Path

import pytest

from harness import sites
from harness.sites import SiteError

SHIPPED = sites.SITES_DIR


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def good_profile(**changes: str) -> str:
    """The local profile's text, with `key = value` lines replaced (value None: line removed)."""
    text = (SHIPPED / "local.toml").read_text()
    for key, line in changes.items():
        text = re.sub(rf"^{key} = .*$", line, text, count=1, flags=re.MULTILINE)
    return text


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_shipped_profiles_load_with_the_course_settings():
    jureca = sites.load(SHIPPED / "jureca-dc.toml")
    assert (jureca.account, jureca.partition, jureca.reservation) == ("training2441", "dc-gpu", "training2441")
    assert jureca.gpus_per_node == 4 and jureca.gpus_real and jureca.cpus_per_task == 128
    assert jureca.setup[1:3] == ["module load Stages/2024", "module load GCC OpenMPI PyTorch"]
    assert "activate.sh" in jureca.setup[3]
    activate = 'export PROJECT="$PROJECT_training2441" SCRATCH="$SCRATCH_training2441"'  # jutil env activate's two
    assert jureca.setup[0] == activate and jureca.venv_setup[0] == activate, "caches and pip's cache go to $SCRATCH"
    assert jureca.job("cats").values["error_rate_max"] == 0.02
    assert "--reservation=training2441" in jureca.sbatch_options()
    assert "--cpus-per-task=1" in jureca.sbatch_options("matrix") and "--cpus-per-task=128" in jureca.sbatch_options("cats")
    local = sites.load(SHIPPED / "local.toml")
    assert not local.gpus_real and local.caches.prepare == "minipets" and local.job("cats").values["error_rate_max"] <= 0.1
    assert local.job("cats").env == {"EPOCHS": "3", "SIZE": "32"} and local.account == "training2441"
    assert local.job("cats").cpus_per_task == 2, "the local cat job needs more than one core, so the check has teeth"


def test_missing_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "broken", good_profile(partition=""))
    with pytest.raises(SiteError) as error:
        sites.load(path)
    assert one_line(error) == f"{path}: missing key `partition`"


def test_misspelt_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, "typo", good_profile(reservation='reservaton = "training2441"'))
    with pytest.raises(SiteError) as error:
        sites.load(path)
    assert one_line(error) == f"{path}: unknown key `reservaton` (did you mean `reservation`?)"


def test_misspelt_nested_key_names_its_table(tmp_path):
    text = good_profile().replace("error_rate_max = 0.1", "error_rate_maxi = 0.1")
    path = write(tmp_path, "nested", text)
    with pytest.raises(SiteError) as error:
        sites.load(path)
    assert one_line(error) == f"{path}: unknown key `jobs.cats.error_rate_maxi` (did you mean `jobs.cats.error_rate_max`?)"


def test_unknown_job_names_the_known_ones(tmp_path):
    path = write(tmp_path, "jobs", good_profile() + "\n[jobs.catz]\nenv = {}\n")
    with pytest.raises(SiteError) as error:
        sites.load(path)
    assert one_line(error) == f"{path}: unknown job `jobs.catz` (did you mean `jobs.cats`?)"


def test_job_knobs_must_be_strings(tmp_path):
    path = write(tmp_path, "knobs", good_profile().replace('env = { EPOCHS = "3", SIZE = "32" }', 'env = { EPOCHS = 3 }'))
    with pytest.raises(SiteError) as error:
        sites.load(path)
    assert one_line(error) == f'{path}: key `jobs.cats.env` must map names to strings (quote numbers: "2")'


def test_wrong_type_is_one_line(tmp_path):
    path = write(tmp_path, "typed", good_profile(cpus_per_task='cpus_per_task = "two"'))
    with pytest.raises(SiteError) as error:
        sites.load(path)
    assert "`cpus_per_task` must be an integer, not 'two'" in one_line(error)


def test_unknown_site_lists_the_profiles(tmp_path):
    write(tmp_path, "alpha", good_profile())
    write(tmp_path, "beta", good_profile())
    with pytest.raises(SiteError) as error:
        sites.resolve("gamma", sites_dir=tmp_path)
    assert one_line(error) == f"unknown site `gamma`: profiles in {tmp_path} are alpha, beta"


def test_host_pattern_picks_the_profile(tmp_path):
    write(tmp_path, "alpha", good_profile(hosts='hosts = ["*.alpha.example"]'))
    write(tmp_path, "beta", good_profile(hosts='hosts = ["betalogin*"]'))
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
    data = [site.caches.fastai_home, site.caches.torch_home, site.job("loaders").values["packed_dir"],
            site.job("ddp").values["packed_dir"]]
    assert all(site.expand(path).startswith("/p/scratch/training2441/student/") for path in data), data
