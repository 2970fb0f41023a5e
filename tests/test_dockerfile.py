"""The Docker image, read as text: two slim stages, pinned dependencies, non-root, checked.

Docker itself is not needed: the Dockerfile is parsed into instructions and each stage's
instructions are checked against what the image must do.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order, with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The instructions of each build stage, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"{instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


def words(instruction: Instruction) -> list[str]:
    """The arguments of an instruction in exec (JSON) or shell form."""
    if instruction.args.startswith("["):
        return [str(word) for word in json.loads(instruction.args)]
    return shlex.split(instruction.args)


def flags(instruction: Instruction) -> tuple[dict[str, str], list[str]]:
    """Leading ``--flag=value`` options of an instruction, and the remaining words."""
    options: dict[str, str] = {}
    rest = shlex.split(instruction.args)
    while rest and rest[0].startswith("--"):
        name, _, value = rest.pop(0)[2:].partition("=")
        options[name] = value
    return options, rest


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def copies(stage: list[Instruction]) -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of every COPY from the build context (not ``--from``)."""
    result = []
    for instruction in stage:
        if instruction.keyword in ("COPY", "ADD"):
            options, paths = flags(instruction)
            if "from" not in options:
                result.append((paths[:-1], paths[-1]))
    return result


@pytest.fixture(scope="module")
def all_stages() -> list[list[Instruction]]:
    return stages(parse(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def final(all_stages: list[list[Instruction]]) -> list[Instruction]:
    return all_stages[-1]


def keywords(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def test_two_stages_on_pinned_slim_python(all_stages: list[list[Instruction]]) -> None:
    assert len(all_stages) == 2
    for stage in all_stages:
        image = flags(stage[0])[1][0]
        name, _, tag = image.partition(":")
        assert name in ("python", "docker.io/library/python"), image
        assert tag and tag != "latest", f"{image} is not pinned to a tag"
        assert re.match(r"3\.\d+", tag) and "slim" in tag, image


def test_runtime_dependencies_come_from_the_lock(all_stages: list[list[Instruction]]) -> None:
    runs = [i.args for stage in all_stages for i in keywords(stage, "RUN")]
    installs = [run for run in runs if "pip install" in run]
    assert any("-r requirements.lock" in run for run in installs)
    # The project itself adds nothing unpinned, and no dev dependency gets in.
    project = [run for run in installs if "-r " not in run]
    assert project and all("--no-deps" in run for run in project)
    assert not any("requirements-dev.lock" in run or "[dev]" in run for run in runs)


def test_final_stage_runs_as_non_root_before_it_starts(final: list[Instruction]) -> None:
    users = [n for n, i in enumerate(final) if i.keyword == "USER"]
    starts = [n for n, i in enumerate(final) if i.keyword in ("ENTRYPOINT", "CMD")]
    assert users and starts
    assert max(users) < min(starts)
    user = final[max(users)].args.split(":")[0]
    assert user not in ("root", "0")


def test_health_check_asks_healthz(final: list[Instruction]) -> None:
    (check,) = keywords(final, "HEALTHCHECK")
    assert "/healthz" in check.args
    assert "curl" not in check.args  # not installed in slim images


def test_final_stage_exposes_8000(final: list[Instruction]) -> None:
    exposed = [port for i in keywords(final, "EXPOSE") for port in i.args.split()]
    assert "8000" in exposed or "8000/tcp" in exposed


def test_settings_point_at_the_data_directory_and_the_copied_seed(
    final: list[Instruction],
) -> None:
    env = env_of(final)
    assert env["DYAD_DATABASE_URL"] == "sqlite:////var/lib/dyad/dyad.db"
    copied = {dest for _, dest in copies(final)}
    workdir = keywords(final, "WORKDIR")[-1].args
    assert env["DYAD_SEED_FILE"] in {
        dest if dest.startswith("/") else f"{workdir}/{dest}" for dest in copied
    }
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"


def test_entrypoint_migrates_seeds_and_serves(final: list[Instruction]) -> None:
    (entrypoint,) = keywords(final, "ENTRYPOINT")
    assert any(word.endswith("docker/entrypoint.sh") for word in words(entrypoint))
    assert any("docker/entrypoint.sh" in sources for sources, _ in copies(final))
    script = ENTRYPOINT.read_text()
    commands = [
        line.strip() for line in script.splitlines() if line.strip().startswith(("dyad ", "exec "))
    ]
    assert re.search(r"^set -\w*e", script, re.MULTILINE), "a failed step must stop the start"
    migrate = next(n for n, c in enumerate(commands) if c.startswith("dyad db upgrade"))
    seed = next(n for n, c in enumerate(commands) if c.startswith("dyad seed"))
    serve = next(n for n, c in enumerate(commands) if c.startswith("exec dyad serve"))
    assert migrate < seed < serve
    serve_words = shlex.split(commands[serve])
    assert serve_words[serve_words.index("--host") + 1] == "0.0.0.0"
    assert serve_words[serve_words.index("--port") + 1] == "8000"


def ignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, pattern.removeprefix("**/"))
        for pattern in patterns
        if not pattern.startswith("!")
        for prefix in prefixes
    )


def test_every_copied_file_exists_and_is_in_the_context(
    all_stages: list[list[Instruction]],
) -> None:
    patterns = ignore_patterns()
    sources = [s for stage in all_stages for paths, _ in copies(stage) for s in paths]
    assert sources
    for source in sources:
        matches = list(ROOT.glob(source.rstrip("/")))
        assert matches, f"COPY {source}: no such file in the repository"
        for match in matches:
            relative = match.relative_to(ROOT).as_posix()
            assert not is_ignored(relative, patterns), f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = ignore_patterns()
    for path in (".venv", ".venv/bin/python", ".git", ".git/HEAD", "data/dyad.db"):
        assert is_ignored(path, patterns), path
    for path in ("app/main.py", "data/seed.json", "requirements.lock", "README.md"):
        assert not is_ignored(path, patterns), path


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_entrypoint_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert ENTRYPOINT.read_text().startswith("#!/usr/bin/env bash\n")
