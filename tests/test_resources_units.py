"""Resources without a running platform: config rules, profile choice, cgroup backends, the `up` preflight."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import cli, free_port

from pangeohub.config import Config, parse_config
from pangeohub.errors import PangeoError
from pangeohub.resources import profiles
from pangeohub.targets.local.cgroup_v1 import CgroupV1
from pangeohub.targets.local.cgroup_v2 import CgroupV2
from pangeohub.targets.local.cgroups import cgroup_mounts, enforceability_problems, enter_user_cgroup

G = 1024**3


# -- config ---------------------------------------------------------------------------------------------
def test_default_config_ships_a_small_and_a_large_profile_and_a_10g_quota():
    config = Config()
    assert [(p.name, p.cpus, p.memory) for p in config.profiles] == [("small", 1, 2 * G), ("large", 2, 8 * G)]
    assert config.homes.quota == 10 * G and config.limits.enforce


@pytest.mark.parametrize("text, expected", [
    ("profiles: []", "at least one profile"),
    ("profiles: [{name: a, cpus: 1, memory: 1G}, {name: a, cpus: 2, memory: 2G}]", "repeated: a"),
    ("profiles: [{name: a, cpus: 1, memory: 10M}]", "profiles.0.memory (got '10M'): at least 64M"),
    ("profiles: [{name: a, cpus: 0, memory: 1G}]", "profiles.0.cpus"),
    ("profiles: [{name: 'Big One', cpus: 1, memory: 1G}]", "profiles.0.name"),
    ("homes: {quota: 1M}", "homes.quota (got '1M'): at least 16M"),
    ("limits: {backend: v3}", "limits.backend"),
    ("shared: {data_link: '../etc'}", "shared.data_link"),
])
def test_bad_resource_config_is_refused_with_the_field_and_value(text, expected):
    with pytest.raises(PangeoError) as info:
        parse_config(text)
    assert expected in str(info.value)


CONFIGS = Path(__file__).parent / "config"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("resources.*.yaml")), ids=lambda p: p.name)
def test_config_fixture_files_through_the_cli(path):
    proc = cli("config", "validate", str(path), check=False)
    if ".ok." in path.name:
        assert proc.returncode == 0 and "valid" in proc.stdout, proc.stderr
    else:
        expected = [line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
                    if line.startswith("# expect:")]
        assert expected and proc.returncode == 2, proc.stderr
        assert all(fragment in proc.stderr for fragment in expected), proc.stderr


# -- profile choice -------------------------------------------------------------------------------------
CONFIG = parse_config(
    "profiles:\n"
    "  - {name: small, cpus: 1, memory: 1G}\n"
    "  - {name: gpu, cpus: 2, memory: 4G, groups: [lab], description: '<b>big</b>'}\n"
)


def test_profile_choice_follows_groups_and_admins_may_use_any():
    assert profiles.choose(CONFIG, {}, set(), False).name == "small"
    assert profiles.choose(CONFIG, {"profile": ["gpu"]}, {"lab"}, False).name == "gpu"  # form data: a list
    assert profiles.choose(CONFIG, {"profile": "gpu"}, set(), True).name == "gpu"
    with pytest.raises(profiles.ProfileError, match="limited to the groups lab; you may use: small"):
        profiles.choose(CONFIG, {"profile": "gpu"}, {"other"}, False)
    with pytest.raises(profiles.ProfileError, match="unknown server option"):
        profiles.choose(CONFIG, {"profile": "small", "cpus": 64}, set(), False)


def test_options_form_lists_allowed_profiles_and_escapes_text():
    form = profiles.options_form(CONFIG, {"lab"}, False, current="gpu")
    assert 'value="gpu" checked' in form and "&lt;b&gt;big&lt;/b&gt;" in form and "<b>big" not in form
    assert 'value="gpu"' not in profiles.options_form(CONFIG, set(), False)


# -- cgroup v2, on a directory laid out like /sys/fs/cgroup (this machine runs cgroup v1) ----------------
def fake_v2(tmp_path: Path, controllers: str = "cpuset cpu io memory pids") -> CgroupV2:
    (tmp_path / "cgroup.controllers").write_text(controllers + "\n")
    (tmp_path / "cgroup.subtree_control").write_text("\n")
    return CgroupV2("pangeohub", mounts=[(str(tmp_path), "cgroup2", {"rw"})])


def test_v2_backend_writes_limits_and_enables_controllers(tmp_path):
    backend = fake_v2(tmp_path)
    assert backend.problems() == []
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    cg = backend.prepare("jupyter-alice", 1.5, 2 * G, 300)
    user = tmp_path / "pangeohub" / "jupyter-alice"
    assert (user / "memory.max").read_text() == str(2 * G)
    assert (user / "cpu.max").read_text() == "150000 100000"
    assert (user / "pids.max").read_text() == "300"
    assert cg.procs_files == (str(user / "cgroup.procs"),) and cg.memory_events == str(user / "memory.events")
    assert cg.pids_events == str(user / "pids.events") and cg.processes == 300
    (user / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    (user / "pids.events").write_text("max 7\n")
    (user / "cgroup.procs").write_text("")  # the kernel makes it with the directory; a plain one does not
    enter_user_cgroup(cg, pid=4242)
    stats = backend.stats("jupyter-alice")
    assert stats == {"memory_limit": 2 * G, "memory_used": 0, "cpus": 1.5, "oom_kills": 1, "processes": 1,
                     "processes_limit": 300, "processes_refused": 7}


def test_v2_backend_says_which_controllers_are_missing(tmp_path):
    problems = fake_v2(tmp_path, controllers="io pids").problems()
    assert len(problems) == 1 and "not cpu and memory" in problems[0]
    problems = fake_v2(tmp_path, controllers="cpu io memory").problems()
    assert len(problems) == 1 and "not pids" in problems[0]


def test_limits_off_means_nothing_to_enforce():
    config = parse_config("limits: {enforce: false, backend: v2}\nprofiles: [{name: a, cpus: 512, memory: 1G}]")
    assert enforceability_problems(config) == []


def test_a_profile_larger_than_the_machine_cannot_be_enforced():
    config = parse_config(f"profiles: [{{name: huge, cpus: {os.cpu_count() + 1}, memory: 1G}}]")
    problems = enforceability_problems(config)
    assert any("huge" in p and "CPUs" in p for p in problems)


# -- the real kernel --------------------------------------------------------------------------------------
needs_v1_root = pytest.mark.skipif(
    os.geteuid() != 0 or not CgroupV1("x", cgroup_mounts()).mounted(), reason="needs root and cgroup v1")


@needs_v1_root
def test_v1_process_enters_its_cgroup_before_exec_and_is_limited():
    backend = CgroupV1(f"pangeohub-unit-{secrets.token_hex(3)}")
    assert backend.problems() == []
    cg = backend.prepare("jupyter-unit", 0.5, 96 * 1024**2, 64)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; print(open('/proc/self/cgroup').read()); sys.stdout.flush();"
             "b = b'x' * (400 * 2**20); print('SURVIVED')"],
            stdout=subprocess.PIPE, text=True, preexec_fn=lambda: enter_user_cgroup(cg))
        out, _ = proc.communicate(timeout=120)
        assert "pangeohub-unit" in out and "jupyter-unit" in out  # in the cgroup from its first line of code
        assert "SURVIVED" not in out and proc.returncode == -9  # killed by the kernel's OOM killer
        stats = backend.stats("jupyter-unit")
        assert stats["memory_limit"] == 96 * 1024**2 and stats["cpus"] == 0.5 and stats["oom_kills"] == 1
    finally:
        for _ in range(50):
            if backend.remove("jupyter-unit"):
                break
            time.sleep(0.1)
        backend.remove_parent()
    assert not any(d.exists() for d in backend.parent_dirs())


@pytest.mark.skipif(os.geteuid() != 0, reason="`up` needs root")
def test_up_refuses_when_this_machine_cannot_enforce_limits(tmp_path):
    if "memory" in (Path("/sys/fs/cgroup/cgroup.controllers").read_text() if
                    Path("/sys/fs/cgroup/cgroup.controllers").exists() else ""):
        pytest.skip("this machine does offer cgroup v2 memory limits")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\ninstall_dir: {sys.prefix}\nlimits: {{backend: v2}}\n"
        f"hub: {{ip: 127.0.0.1, port: {free_port()}, internal_port: {free_port()}, "
        f"proxy_api_port: {free_port()}}}\n")
    proc = cli("up", "--detach", config=config, check=False)
    assert proc.returncode == 2
    assert "cannot enforce the configured CPU and memory limits" in proc.stderr
    assert "cgroup v2" in proc.stderr and "limits: {enforce: false}" in proc.stderr
    assert not (tmp_path / "state" / "run" / "supervisor.pid").exists()  # nothing was started


@needs_v1_root
def test_v1_fork_loop_stops_at_the_process_limit_and_is_counted():
    backend = CgroupV1(f"pangeohub-unit-{secrets.token_hex(3)}")
    cg = backend.prepare("jupyter-forker", 1, 512 * 1024**2, 40)
    # Children that sleep, forked until the kernel refuses: the loop must end at the limit, not at pid_max.
    loop = ("import os, time, errno\nn = 0\nwhile True:\n"
            "    try:\n        pid = os.fork()\n    except OSError as exc:\n"
            "        print('REFUSED', n, errno.errorcode[exc.errno], flush=True); break\n"
            "    if pid == 0:\n        time.sleep(60); os._exit(0)\n    n += 1\n"
            "os.killpg(0, 9)\n")
    try:
        proc = subprocess.run([sys.executable, "-c", loop], capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: (os.setpgrp(), enter_user_cgroup(cg)))
        refused = [line.split() for line in proc.stdout.splitlines() if line.startswith("REFUSED")]
        assert refused and refused[0][2] == "EAGAIN", proc.stdout + proc.stderr
        assert int(refused[0][1]) < 40  # the loop's own process counts too
        assert backend.stats("jupyter-forker")["processes_refused"] >= 1
        assert backend.stats("jupyter-forker")["processes_limit"] == 40
        # The machine outside the cgroup still forks.
        assert subprocess.run(["true"]).returncode == 0
    finally:
        for _ in range(100):
            if backend.remove("jupyter-forker"):
                break
            time.sleep(0.1)
        backend.remove_parent()
