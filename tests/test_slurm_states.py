"""The harness's Slurm state machine (harness/slurm.py: Poller, wait), state by state, without a cluster.

What Slurm's commands print is recorded from the local cluster (Slurm 22.05, tests/slurm_states/record.py ->
tests/slurm_states/recorded.json): `sacct`, `squeue` and `scontrol show job` for a job in every state, a node's
record after a node failure, and the messages of the commands while the controller or the accounting daemon does
not answer. A fake Slurm (`FakeSlurm`) plays them back along a timeline on a fake clock, so a test says "pending
until second 5, running until second 20, then FAILED" and checks what the harness prints, decides and cancels,
in no time and on any machine (as submitit's `mocked_slurm` does). What only a real cluster shows (sbatch's
refusals, a real requeue, a whole --cluster run) stays in tests/test_cluster_harness.py.

Key checks are proven with broken copies of harness/slurm.py (`broken`): a copy that no longer counts requeues,
no longer falls back to scontrol when sacct fails, or never cancels a held job must fail the same scenario.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from harness import slurm
from harness.cluster_run import judge

RECORDED = json.loads((Path(__file__).parent / "slurm_states" / "recorded.json").read_text())
CASES = RECORDED["cases"]
JOB = "100"  # the id every played-back job gets (the recordings' own ids are replaced by it)
FINAL = {"COMPLETED", "FAILED", "OUT_OF_MEMORY", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED"}


def _preempted() -> dict:
    """NOT recorded: the local cluster has no preemption (PreemptType=preempt/none), so PREEMPTED is the recorded
    CANCELLED job with its state word changed (sacct, squeue and scontrol print states the same way)."""
    case = json.loads(json.dumps(CASES["CANCELLED"]))
    for command, old, new in (("sacct", "|CANCELLED by 1001|", "|PREEMPTED|"), ("squeue", "|CANCELLED|", "|PREEMPTED|"),
                              ("scontrol", "JobState=CANCELLED", "JobState=PREEMPTED")):
        assert old in case[command]["stdout"], (command, case[command]["stdout"])
        case[command]["stdout"] = case[command]["stdout"].replace(old, new)
    return case


CASES["PREEMPTED"] = _preempted()


def recorded(case: str, command: str) -> dict:
    """One recorded answer of `command` (sacct, squeue, scontrol, node) in `case`, with its job id made JOB."""
    entry = CASES[case][command]
    own = CASES[case]["job"]
    swap = (lambda text: re.sub(rf"(?<![\d.]){own}(?![\d])", JOB, text)) if command != "node" else (lambda t: t)
    return {"rc": entry["rc"], "stdout": swap(entry["stdout"]), "stderr": swap(entry["stderr"])}


@dataclass
class Phase:
    """From second `start` on, each command answers as in a recorded case (None: as the job's own case)."""
    start: float
    case: str
    sacct: str | None = None  # another case for sacct alone: an accounting outage, or accounting lagging behind
    controller: str | None = None  # another case for squeue and scontrol: a controller restart


@dataclass
class FakeSlurm:
    """Slurm's commands played back from recordings along a timeline, on a fake clock that `sleep` advances."""
    phases: list[Phase]
    node: str = ""  # `scontrol show node`'s answer (default: the recorded node after the NODE_FAIL, back already)
    now: float = 0.0
    calls: list[list[str]] = field(default_factory=list)
    cancelled_at: float | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the harness must pause between polls"
        self.now += seconds

    def phase(self) -> Phase:
        current = [p for p in self.phases if p.start <= self.now][-1]
        if self.cancelled_at is not None and current.case not in FINAL:
            return Phase(self.cancelled_at, "CANCELLED")
        return current

    def __call__(self, argv: list[str], **_: object) -> subprocess.CompletedProcess:
        self.calls.append(list(argv))
        phase = self.phase()
        command = argv[0]
        if command == "scancel":
            self.cancelled_at = self.now
            return subprocess.CompletedProcess(argv, 0, "", "")
        if argv[:3] == ["scontrol", "show", "hostnames"]:  # a plain node list expands to itself
            return subprocess.CompletedProcess(argv, 0, argv[3].replace(",", "\n") + "\n", "")
        if argv[:4] == slurm.SCONTROL_NODE:
            return subprocess.CompletedProcess(argv, 0, self.node or CASES["NODE_FAIL"]["node"]["stdout"], "")
        case = {"sacct": phase.sacct, "squeue": phase.controller, "scontrol": phase.controller}.get(command) \
            or phase.case
        answer = recorded(case, command)
        return subprocess.CompletedProcess(argv, answer["rc"], answer["stdout"], answer["stderr"])


def play(phases: list[Phase], *, use_sacct: bool = True, module: ModuleType = slurm, pending_limit_s: int = 3600,
         time_margin_s: int = 120, node: str = "") -> tuple[slurm.Job, list[str], FakeSlurm]:
    """Wait for one job through `module` (harness/slurm.py or a broken copy) against the played-back Slurm."""
    fake = FakeSlurm(phases, node=node)
    job = module.Job(name="job", job_id=JOB)
    lines: list[str] = []
    module.wait([job], poller=module.Poller(use_sacct=use_sacct, runner=fake), log=lines.append, sleep=fake.sleep,
                clock=fake.clock, pending_limit_s=pending_limit_s, time_margin_s=time_margin_s)
    return job, lines, fake


def broken(old: str, new: str) -> ModuleType:
    """A copy of harness/slurm.py with `old` (which must be there) replaced by `new`: a deliberately broken harness."""
    source = Path(slurm.__file__).read_text()
    if source.count(old) != 1:  # not an AssertionError: a broken copy that breaks nothing must not pass as caught
        raise LookupError(f"harness/slurm.py no longer has {old!r} once: update the broken copy")
    spec = importlib.util.spec_from_loader("broken_slurm", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules["broken_slurm"] = module  # dataclasses look their module up
    try:
        exec(compile(source.replace(old, new), "broken_slurm", "exec"), module.__dict__)
    finally:
        del sys.modules["broken_slurm"]
    return module


POLLERS = [pytest.param(True, id="sacct"), pytest.param(False, id="scontrol")]


def line(*tokens: str) -> str:
    return f"job {JOB} " + " -> ".join(tokens)


# --- every final state, through both pollers -----------------------------------------------------------------------

EXIT_CODES = {  # (case, poller) -> the exit code the recording shows: sacct and scontrol differ for signalled jobs
    ("COMPLETED", "sacct"): "0:0", ("COMPLETED", "scontrol"): "0:0", ("FAILED", "sacct"): "3:0",
    ("FAILED", "scontrol"): "3:0", ("TIMEOUT", "sacct"): "0:0", ("TIMEOUT", "scontrol"): "0:15",
    ("OUT_OF_MEMORY", "sacct"): "0:125", ("OUT_OF_MEMORY", "scontrol"): "0:125", ("CANCELLED", "sacct"): "0:0",
    ("CANCELLED", "scontrol"): "0:15", ("NODE_FAIL", "sacct"): "0:0", ("NODE_FAIL", "scontrol"): "0:0",
    ("PREEMPTED", "sacct"): "0:0", ("PREEMPTED", "scontrol"): "0:15",
}


def recorded_seconds(case: str, poller: str) -> int:
    """The run time the recording shows (sacct's ElapsedRaw, scontrol's RunTime): it differs between recordings."""
    if poller == "sacct":
        return int(CASES[case]["sacct"]["stdout"].split("|")[3])
    hours, minutes, secs = re.search(r"RunTime=(\d+):(\d+):(\d+)", CASES[case]["scontrol"]["stdout"]).groups()
    return (int(hours) * 60 + int(minutes)) * 60 + int(secs)


def final_token(case: str, poller: str) -> str:
    """What the harness prints for the end of a job in `case`."""
    return f"{case} {EXIT_CODES[case, poller]} in {recorded_seconds(case, poller)} s"


@pytest.mark.parametrize("use_sacct", POLLERS)
@pytest.mark.parametrize("case", sorted(FINAL))
def test_every_state_is_printed_once_and_the_end_is_judged_at_once(case, use_sacct, tmp_path):
    """Pending until second 5, running until 20, then the final state: three lines, one per change, and the wait
    ends with the first poll after second 20 (the pause then is 1 s plus 5 % of the 15 s since the last change)."""
    job, lines, fake = play([Phase(0, "PENDING_BeginTime"), Phase(5, "RUNNING"), Phase(20, case)], use_sacct=use_sacct)
    end = final_token(case, "sacct" if use_sacct else "scontrol")
    cause = f" ({job.cause})" if job.cause else ""
    assert lines == [line("PD (BeginTime)"), line("PD (BeginTime)", "R"), line("PD (BeginTime)", "R", end) + cause]
    assert 20 <= fake.now <= 20 + 1 + slurm.BACKOFF * 15 + 1e-9
    assert not job.given_up and not job.lost and fake.cancelled_at is None
    verdict = judge(job, tmp_path)
    assert verdict.passed == (case == "COMPLETED"), verdict.report()
    if case != "COMPLETED":
        assert verdict.problems[0].startswith(f"the job ended {case} with exit code ")
        assert slurm.STATE_MEANING[case] in verdict.problems[0]


def test_node_failure_is_judged_with_its_cause(tmp_path):
    """A node taken down under a running job: NODE_FAIL, and the verdict says where and why: the job's reason
    (recorded: NodeDown; the local node came back at once, so its own record has no reason) and, for a node that
    stays out, the node's reason (the recorded drained dc02, renamed dc01)."""
    job, lines, _ = play([Phase(0, "RUNNING"), Phase(10, "NODE_FAIL")])
    assert (job.state, job.cause) == ("NODE_FAIL", "on dc01: NodeDown")
    assert lines[-1].startswith(line("R", "NODE_FAIL 0:0 in ")) and lines[-1].endswith(" s (on dc01: NodeDown)")
    verdict = judge(job, tmp_path)
    assert verdict.problems == [f"the job ended NODE_FAIL with exit code 0:0: {slurm.STATE_MEANING['NODE_FAIL']} "
                                "(on dc01: NodeDown)"]
    out = CASES["node_drained"]["node"]["stdout"].replace("dc02", "dc01")
    job, _, _ = play([Phase(0, "RUNNING"), Phase(10, "NODE_FAIL")], node=out)
    assert re.fullmatch(r"on dc01: NodeDown; dc01 \S*DRAIN\S*: recording ReqNodeNotAvail \[root@.*\]", job.cause), \
        job.cause


# --- pending reasons -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_sacct", POLLERS)
@pytest.mark.parametrize("reason", ["DependencyNeverSatisfied", "JobHeldUser"])
def test_a_reason_that_never_clears_is_cancelled_at_first_sight(reason, use_sacct):
    job, lines, fake = play([Phase(0, f"PENDING_{reason}")], use_sacct=use_sacct)
    assert fake.cancelled_at == 0 and job.given_up == f"pending for a reason that will not clear: {reason}"
    assert lines[:2] == [line(f"PD ({reason})"), f"job {JOB} cancelled: {job.given_up}"]
    assert lines[-1] == line(f"PD ({reason})", final_token("CANCELLED", "sacct" if use_sacct else "scontrol"))


def test_a_broken_copy_that_waits_on_a_reason_that_never_clears_is_caught():
    module = broken('"AssociationJobLimit", "ReservationDeleted", "BadConstraints", "DependencyNeverSatisfied", ',
                    '"AssociationJobLimit", "ReservationDeleted", "BadConstraints", ')
    with pytest.raises(AssertionError):
        job, _, fake = play([Phase(0, "PENDING_DependencyNeverSatisfied")], module=module, pending_limit_s=900)
        assert fake.cancelled_at == 0, fake.cancelled_at


@pytest.mark.parametrize("use_sacct", POLLERS)
def test_an_ordinary_reason_waits_until_the_pending_limit(use_sacct):
    job, _, fake = play([Phase(0, "PENDING_BeginTime")], use_sacct=use_sacct, pending_limit_s=900)
    assert 900 < fake.cancelled_at <= 900 + 30, fake.cancelled_at  # the pause between polls is at most 30 s
    assert re.fullmatch(r"still pending after 9\d\d s \(limit 900 s\): BeginTime", job.given_up), job.given_up


@pytest.mark.parametrize("use_sacct", POLLERS)
def test_a_reason_slow_to_clear_is_given_its_patience_then_cancelled(use_sacct):
    """ReqNodeNotAvail (a drained node the job asked for): given SLOW_TO_CLEAR_S, then cancelled naming it."""
    patience = slurm.SLOW_TO_CLEAR_S["ReqNodeNotAvail"]
    job, lines, fake = play([Phase(0, "PENDING_ReqNodeNotAvail")], use_sacct=use_sacct)
    assert patience < fake.cancelled_at <= patience + 30, fake.cancelled_at
    assert re.fullmatch(rf"pending for 6\d\d s on a reason that did not clear: ReqNodeNotAvail.*dc02", job.given_up), \
        job.given_up
    assert "UnavailableNodes:dc02" in lines[0]


def test_the_pause_between_polls_starts_short_and_grows_to_its_ceiling():
    """The first pause is 1 s, each next one 5 % of the time since the last change longer, up to 30 s: the time
    grows geometrically (t_n = 20 (1.05^n - 1)) and reaches the 30 s ceiling at second 580 after ~70 polls; the
    last 320 s of a 900 s wait take 11 more. So about 81 polls where a fixed 1 s pause would make 900."""
    fake = FakeSlurm([Phase(0, "PENDING_BeginTime")])
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        fake.sleep(seconds)

    job = slurm.Job(name="job", job_id=JOB)
    slurm.wait([job], poller=slurm.Poller(use_sacct=True, runner=fake), log=lambda text: None, sleep=sleep,
               clock=fake.clock, pending_limit_s=900)
    assert pauses[0] == 1.0 and pauses == sorted(pauses) and max(pauses) == 30.0
    assert 78 <= len(pauses) <= 84, len(pauses)


# --- requeues --------------------------------------------------------------------------------------------------------

def requeued_once(module: ModuleType = slurm, fail_case: str = "REQUEUED_pending") -> None:
    job, lines, _ = play([Phase(0, "RUNNING"), Phase(10, fail_case), Phase(50, "RUNNING"), Phase(70, "COMPLETED")],
                         module=module)
    assert job.requeues == 1 and job.state == "COMPLETED" and not job.given_up, lines
    assert lines[-1] == line("R", "PD (BeginTime)", "R", "COMPLETED 0:0 in 0 s")


def test_a_requeued_job_is_followed_to_its_real_end():
    requeued_once()


@pytest.mark.parametrize("case", ["NODE_FAIL_requeued", "NODE_FAIL_requeued_sacct_behind"])
def test_a_requeue_after_a_node_failure_is_followed_though_sacct_may_say_node_fail(case):
    """Recorded: a requeueable job on a failed node is back in the queue (squeue: PENDING, BeginTime); sacct shows
    it PENDING, or (one recording) still its first allocation's NODE_FAIL. The controller's word wins either way;
    the job runs again."""
    assert CASES["NODE_FAIL_requeued_sacct_behind"]["sacct"]["stdout"].split("|")[1] == "NODE_FAIL"
    requeued_once(fail_case=case)


def test_broken_copies_that_miss_a_requeue_are_caught():
    with pytest.raises(AssertionError):
        requeued_once(broken("job.requeues += 1", "pass"))
    with pytest.raises(AssertionError):  # trusts sacct's NODE_FAIL: judges a job that Slurm runs again
        requeued_once(broken('REQUEUE_PRONE = frozenset({"NODE_FAIL", "PREEMPTED"})', "REQUEUE_PRONE = frozenset()"),
                      fail_case="NODE_FAIL_requeued_sacct_behind")


def test_more_requeues_than_max_requeues_are_given_up():
    phases = [Phase(20 * i + offset, case) for i in range(slurm.MAX_REQUEUES + 2)
              for offset, case in ((0, "RUNNING"), (10, "REQUEUED_pending"))]
    job, lines, fake = play(phases)
    assert job.requeues == slurm.MAX_REQUEUES + 1
    assert job.given_up == f"requeued {slurm.MAX_REQUEUES + 1} times (node failures or preemption): giving up"
    assert fake.cancelled_at is not None and lines[-1].endswith(final_token("CANCELLED", "sacct"))


@pytest.mark.parametrize("use_sacct", POLLERS)
def test_a_job_held_after_a_requeue_is_given_up_with_the_release_command(use_sacct):
    job, _, fake = play([Phase(0, "RUNNING"), Phase(10, "REQUEUE_HOLD")], use_sacct=use_sacct)
    assert 10 <= fake.cancelled_at < 12
    assert job.given_up == ("held after a requeue: it would stay in the queue until someone runs "
                            f"`scontrol release {JOB}`")


# --- a job Slurm no longer knows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_sacct", POLLERS)
def test_a_job_that_vanishes_is_lost_at_once_and_one_never_seen_after_lost_after_s(use_sacct):
    job, lines, fake = play([Phase(0, "RUNNING"), Phase(10, "vanished")], use_sacct=use_sacct)
    assert job.lost and 10 <= fake.now < 12
    assert lines[-1] == f"job {JOB} lost: Slurm has no record of the job (purged or never arrived)"
    job, _, fake = play([Phase(0, "vanished")], use_sacct=use_sacct)
    assert job.lost and slurm.LOST_AFTER_S < fake.now <= slurm.LOST_AFTER_S + 30


# --- outages: accounting, the controller ----------------------------------------------------------------------------

OUTAGE = ("accounting (sacct) does not answer (sacct: error: Problem talking to the database: Connection refused): "
          "following the jobs with scontrol until it is back")


def judged_during_an_accounting_outage(module: ModuleType = slurm) -> list[str]:
    """slurmdbd down from second 5 to 200 while the job runs and (at 20) ends: judged at once by scontrol."""
    job, lines, fake = play([Phase(0, "RUNNING"), Phase(5, "RUNNING", sacct="accounting_down"),
                             Phase(20, "COMPLETED", sacct="accounting_down"), Phase(200, "COMPLETED")], module=module)
    assert job.state == "COMPLETED" and job.exit_code == "0:0" and fake.now < 22, (fake.now, lines)
    return lines


def test_an_accounting_outage_is_one_line_and_the_job_is_judged_when_it_ends():
    assert judged_during_an_accounting_outage() == [line("R"), OUTAGE, line("R", "COMPLETED 0:0 in 0 s")]


def test_a_broken_copy_that_waits_for_accounting_is_caught():
    with pytest.raises(AssertionError):  # the harness before this fix: silent until slurmdbd was back
        judged_during_an_accounting_outage(broken(
            'f"jobs with scontrol until it is back")\n            return self._controller(ids)',
            'f"jobs with scontrol until it is back")\n            return None'))


def test_accounting_back_before_the_end_is_one_more_line():
    job, lines, _ = play([Phase(0, "RUNNING"), Phase(5, "RUNNING", sacct="accounting_down"), Phase(15, "RUNNING"),
                          Phase(30, "COMPLETED")])
    assert lines == [line("R"), OUTAGE, "accounting (sacct) answers again: polling with sacct",
                     line("R", "COMPLETED 0:0 in 0 s")]


def judged_ahead_of_lagging_accounting(module: ModuleType = slurm) -> list[str]:
    """The controller has the job COMPLETED at second 10; accounting still says what it said while the job ran
    (recorded: PENDING) until second 110."""
    job, lines, fake = play([Phase(0, "RUNNING"), Phase(10, "COMPLETED", sacct="RUNNING"), Phase(110, "COMPLETED")],
                            module=module)
    assert job.state == "COMPLETED" and fake.now < 12, (fake.now, lines)
    return lines


def test_accounting_lagging_behind_the_controller_is_one_line_and_the_controller_decides():
    assert CASES["RUNNING"]["sacct"]["stdout"].split("|")[1] == "PENDING"  # recorded: sacct lags for a running job
    assert judged_ahead_of_lagging_accounting() == [
        line("R"), f"accounting (sacct) has not recorded yet that job {JOB} ended (COMPLETED): judged by the "
                   "controller's record (scontrol)", line("R", "COMPLETED 0:0 in 0 s")]
    with pytest.raises(AssertionError):
        judged_ahead_of_lagging_accounting(broken("                    ended.append(job_id)\n",
                                                  "                    pass\n"))


CONTROLLER_DOWN = ("the Slurm controller does not answer (slurm_load_jobs error: Unable to contact slurm controller "
                   "(connect failure)): still waiting")


def survives_a_controller_restart(use_sacct: bool, module: ModuleType = slurm) -> list[str]:
    """slurmctld restarting: squeue and scontrol fail from second 5 to 20 (sacct still answers); the run goes on."""
    job, lines, _ = play([Phase(0, "PENDING_BeginTime"), Phase(5, "PENDING_BeginTime", controller="controller_down"),
                          Phase(20, "RUNNING"), Phase(40, "COMPLETED")], use_sacct=use_sacct, module=module)
    assert job.state == "COMPLETED" and not job.lost and not job.given_up, lines
    return lines


@pytest.mark.parametrize("use_sacct", POLLERS)
def test_a_controller_restart_is_waited_out(use_sacct):
    assert survives_a_controller_restart(use_sacct) == [
        line("PD (BeginTime)"), CONTROLLER_DOWN, "the Slurm controller answers again", line("PD (BeginTime)", "R"),
        line("PD (BeginTime)", "R", "COMPLETED 0:0 in 0 s")]


def test_a_broken_copy_that_takes_no_answer_for_no_job_is_caught():
    with pytest.raises(AssertionError):  # scontrol's failure read as "Slurm knows no such job": the job is lost
        survives_a_controller_restart(False, broken(
            'does not answer ({_last_line(done)}): still waiting")\n            return None',
            'does not answer ({_last_line(done)}): still waiting")\n            return {}'))


# --- jobs that requeue themselves, follow-up jobs ---------------------------------------------------------------------

def requeued_often(module: ModuleType = slurm, requeues_itself: bool = True) -> tuple[slurm.Job, list[str], FakeSlurm]:
    """A job that runs and goes back to the queue MAX_REQUEUES + 2 times (as a script that runs `scontrol requeue`
    at its signal does), then completes."""
    rounds = slurm.MAX_REQUEUES + 2
    phases = [Phase(20 * i + offset, case) for i in range(rounds)
              for offset, case in ((0, "RUNNING"), (10, "REQUEUED_pending"))]
    fake = FakeSlurm(phases + [Phase(20 * rounds, "RUNNING"), Phase(20 * rounds + 10, "COMPLETED")])
    job = module.Job(name="job", job_id=JOB, requeues_itself=requeues_itself)
    lines: list[str] = []
    module.wait([job], poller=module.Poller(use_sacct=True, runner=fake), log=lines.append, sleep=fake.sleep,
                clock=fake.clock)
    return job, lines, fake


def followed_past_max_requeues(module: ModuleType = slurm) -> None:
    job, lines, fake = requeued_often(module)
    assert job.requeues == slurm.MAX_REQUEUES + 2, f"counted {job.requeues} requeues: {lines}"
    assert job.state == "COMPLETED" and not job.given_up and fake.cancelled_at is None, lines[-1]


def test_a_job_that_requeues_itself_is_followed_past_max_requeues():
    followed_past_max_requeues()


def test_a_broken_copy_that_gives_up_a_job_requeueing_itself_is_caught():
    with pytest.raises(AssertionError):
        followed_past_max_requeues(broken("if job.requeues > MAX_REQUEUES and not job.requeues_itself:",
                                          "if job.requeues > MAX_REQUEUES:"))
    job, _, _ = requeued_often(requeues_itself=False)  # and a job that does not declare it is still given up
    assert job.given_up.startswith(f"requeued {slurm.MAX_REQUEUES + 1} times"), job.given_up


RUNS_RECORDED = (  # `sacct --duplicates` of a job requeued twice with `scontrol requeue` on the local cluster
    "563|REQUEUED|0:0|3|5|dc01|2026-11-30T14:11:28|2026-11-30T14:11:31\n"
    "563|REQUEUED|0:0|2|5|dc01|2026-11-30T14:12:03|2026-11-30T14:12:05\n"
    "563|COMPLETED|0:0|20|5|dc01|2026-11-30T14:12:38|2026-11-30T14:12:58\n")


@pytest.mark.parametrize("use_sacct", POLLERS)
def test_a_follow_up_waits_for_its_job_beyond_the_pending_limit(use_sacct):
    """A follow-up (--dependency=afterany) pends while the job before it runs, however long: that job is followed
    and given up on its own. Its pending limit counts from when the dependency clears."""
    assert "Reason=Dependency Dependency=afterany:" in CASES["PENDING_Dependency"]["scontrol"]["stdout"]
    job, lines, fake = play([Phase(0, "PENDING_Dependency"), Phase(2000, "PENDING_BeginTime"),
                             Phase(2100, "RUNNING"), Phase(2200, "COMPLETED")], use_sacct=use_sacct,
                            pending_limit_s=900)
    assert job.state == "COMPLETED" and not job.given_up and fake.cancelled_at is None, lines
    assert lines[0] == line("PD (Dependency)"), lines[0]
    job, _, fake = play([Phase(0, "PENDING_Dependency"), Phase(100, "PENDING_BeginTime")], use_sacct=use_sacct,
                        pending_limit_s=900)
    assert 1000 < fake.cancelled_at <= 1000 + 30, f"cancelled at {fake.cancelled_at}: 900 s after the dependency"


def test_a_broken_copy_that_counts_a_dependency_against_the_pending_limit_is_caught():
    module = broken("""        if _head(job.reason) == "Dependency":""", """        if False:""")
    with pytest.raises(AssertionError):
        job, _, _ = play([Phase(0, "PENDING_Dependency"), Phase(2000, "RUNNING"), Phase(2100, "COMPLETED")],
                         module=module, pending_limit_s=900)
        assert not job.given_up, job.given_up


def test_every_run_of_a_requeued_job_is_read_from_sacct_duplicates():
    """`sacct --duplicates` lists each run of a job that kept its id (recorded: a job requeued twice with
    `scontrol requeue` on the local cluster), oldest first."""
    runs = slurm.parse_runs(RUNS_RECORDED)
    assert [info.state for info, _, _ in runs] == ["REQUEUED", "REQUEUED", "COMPLETED"], runs
    assert all(start and end for _, start, end in runs), runs
    assert slurm.runs_argv("7")[:2] == ["sacct", "--duplicates"], slurm.runs_argv("7")
