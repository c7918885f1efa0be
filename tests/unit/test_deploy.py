"""The deployment files agree with the code: docker-compose.yml, deploy/Dockerfile and the
configuration docs are checked against the `alloop` command and the Settings model.

No Docker engine is needed: the files are parsed, never built or run.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from cli.main import app
from loop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONFIG_DOC = ROOT / "docs" / "configuration.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

PREFIX = str(Settings.model_config["env_prefix"]).upper()
DELIMITER = str(Settings.model_config["env_nested_delimiter"])
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN", re.IGNORECASE)


# ---- helpers ------------------------------------------------------------------------------


def setting_fields(
    model: type[BaseModel] = Settings, prefix: str = PREFIX
) -> Iterator[tuple[str, FieldInfo]]:
    """(ENV_NAME, FieldInfo) of every leaf setting, walking nested sections."""
    for name, info in model.model_fields.items():
        env_name = f"{prefix}{name}".upper()
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from setting_fields(annotation, f"{env_name}{DELIMITER}")
        else:
            yield env_name, info


SETTING_NAMES = {name for name, _ in setting_fields()}


def maps_to_setting(env_name: str) -> bool:
    """Whether pydantic-settings reads ``env_name`` into a leaf field (case-insensitive)."""
    if not env_name.upper().startswith(PREFIX):
        return False
    model: type[BaseModel] = Settings
    parts = env_name[len(PREFIX) :].lower().split(DELIMITER)
    for i, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return False
        annotation = info.annotation
        is_section = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i == len(parts) - 1:
            return not is_section
        if not is_section:
            return False
        model = annotation
    return False


# What an operator gives a required variable whose value has a format of its own.
REQUIRED_VALUES = {
    # a Standard Webhooks secret, as Argilla returns it
    "ALLOOP_WEBHOOK_SECRET": base64.b64encode(bytes(range(64))).decode(),
}


def interpolate(value: str) -> str:
    """Resolve compose interpolation as an operator who set only the required variables
    would (they get a placeholder, or a value of the right format)."""

    def resolve(match: re.Match[str]) -> str:
        op = match["op"] or ""
        if op.endswith("-"):
            return match["arg"]
        if op.endswith("?"):
            return REQUIRED_VALUES.get(match["name"], f"placeholder-{match['name'].lower()}")
        return ""

    return INTERPOLATION.sub(resolve, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, args = current.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        current = ""
    return instructions


def interpolate_build_arg(value: str, args: dict[str, str]) -> str:
    """Resolve ``${ARG}`` in a Dockerfile line from the ARG defaults."""
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], ""), value)


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword == "ENV":
            for token in shlex.split(args):
                name, _, value = token.partition("=")
                env[name] = value
    return env


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON) form, not {args!r}"
    return [str(v) for v in value]


def uses_our_dockerfile(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if build is None:
        return False
    context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return (context / dockerfile).resolve() == DOCKERFILE.resolve()


def alloop_argv(service: dict[str, Any]) -> list[str] | None:
    """The argv a service runs, if it runs the alloop image (entrypoint + command)."""
    if not uses_our_dockerfile(service):
        return None
    final = final_stage(dockerfile_instructions())
    image_entrypoint = [exec_form(a) for k, a in final if k == "ENTRYPOINT"][-1]
    image_cmd = [exec_form(a) for k, a in final if k == "CMD"][-1]
    entrypoint = as_argv(service["entrypoint"]) if "entrypoint" in service else image_entrypoint
    command = as_argv(service["command"]) if "command" in service else image_cmd
    argv = entrypoint + command
    if argv[:2] == ["tini", "--"]:
        argv = argv[2:]
    return argv


def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def resolve_command(words: list[str]) -> Any:
    """Walk the `alloop` command tree by the command's words; fail on an unknown one.

    Duck-typed: recent typer ships its own copy of click's classes, older typer uses click's.
    """
    command: Any = typer.main.get_command(app)
    path = ["alloop"]
    rest = list(words)
    while is_group(command) and rest and not rest[0].startswith("-"):
        word = rest.pop(0)
        sub = command.get_command(typer.Context(command), word)
        assert sub is not None, f"`{' '.join(path)}` has no sub-command {word!r}"
        command, path = sub, [*path, word]
    options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    options.add("--help")
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"`{' '.join(path)}` has no option {word}"
    if is_group(command):
        assert rest and rest[0] == "--help", f"`{' '.join(path)}` is a group, not a command"
    return command


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


# ---- docker-compose.yml -------------------------------------------------------------------


def test_every_service_has_an_image_or_a_dockerfile_that_exists(services: dict) -> None:
    for name, service in services.items():
        build = service.get("build")
        if build is None:
            assert service.get("image"), f"service {name} has neither image nor build"
            continue
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert context.is_dir(), f"service {name}: build context {context} is missing"
        assert (context / dockerfile).is_file(), f"service {name}: {dockerfile} is missing"


def test_the_api_and_the_scorer_run_from_the_alloop_image(services: dict) -> None:
    assert alloop_argv(services["api"])[:2] == ["alloop", "api"]
    assert alloop_argv(services["scorer"])[:3] == ["alloop", "worker", "scorer"]


def test_every_alloop_command_exists_in_the_cli(services: dict) -> None:
    ran = 0
    for name, service in services.items():
        argv = alloop_argv(service)
        if argv is None:
            continue
        assert argv[0] == "alloop", f"service {name} runs {argv!r}, not the alloop command"
        resolve_command(argv[1:])
        ran += 1
    assert ran >= 2


def test_every_alloop_variable_in_compose_is_a_setting(services: dict) -> None:
    for name, service in services.items():
        for env_name in environment(service):
            if env_name.upper().startswith(PREFIX):
                assert maps_to_setting(env_name), (
                    f"service {name}: {env_name} is not a field of loop.settings.Settings"
                )


def test_each_alloop_service_environment_builds_valid_settings(
    services: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_env = dockerfile_env(final_stage(dockerfile_instructions()))
    for name, service in services.items():
        if not uses_our_dockerfile(service):
            continue
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.upper().startswith(PREFIX)]:
                patch.delenv(key)
            for key, value in {**image_env, **environment(service)}.items():
                if key.upper().startswith(PREFIX):
                    patch.setenv(key, interpolate(value))
            settings = Settings()
        assert settings.kafka.bootstrap_servers, f"service {name} has no broker address"
        if name == "api":
            assert settings.api.host == "0.0.0.0"
            assert settings.api.keys, "the API service sets no key"


def test_the_broker_address_is_the_kafka_service_listener(services: dict) -> None:
    kafka_env = environment(services["kafka"])
    advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    for name, service in services.items():
        servers = environment(service).get(f"{PREFIX}KAFKA{DELIMITER}BOOTSTRAP_SERVERS")
        if servers:
            for server in interpolate(servers).split(","):
                assert f"//{server}" in advertised, f"service {name}: {server} is not advertised"


def test_kafka_runs_in_kraft_mode_with_a_data_volume(compose: dict, services: dict) -> None:
    kafka = services["kafka"]
    image = kafka["image"]
    assert image.startswith("apache/kafka:"), image
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", image), "pin an exact 3.x or 4.x tag"
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    log_dir = env["KAFKA_LOG_DIRS"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in kafka["volumes"]}
    assert log_dir in volumes, "Kafka's log dir must be on a volume"
    assert volumes[log_dir] in compose["volumes"], "use a named volume for Kafka's data"


def test_kafka_and_the_api_have_healthchecks(services: dict) -> None:
    for name in ("kafka", "api"):
        check = services[name].get("healthcheck")
        assert check and not check.get("disable"), f"service {name} has no healthcheck"
        assert check["test"], f"service {name} has an empty healthcheck"
    assert "kafka-broker-api-versions.sh" in " ".join(
        as_argv(services["kafka"]["healthcheck"]["test"])
    )
    api_test = " ".join(as_argv(services["api"]["healthcheck"]["test"]))
    port = interpolate(environment(services["api"])[f"{PREFIX}API{DELIMITER}PORT"])
    assert f":{port}/health" in api_test


def test_workers_wait_for_a_healthy_broker(services: dict) -> None:
    for name, service in services.items():
        argv = alloop_argv(service)
        if argv and argv[1:2] == ["worker"]:
            depends = service.get("depends_on") or {}
            assert isinstance(depends, dict), f"service {name}: use depends_on with a condition"
            assert depends.get("kafka", {}).get("condition") == "service_healthy", name


def test_the_api_and_the_scorers_share_one_registry_volume(compose: dict, services: dict) -> None:
    mounts = set()
    for name in ("api", "scorer"):
        registry_dir = environment(services[name]).get(f"{PREFIX}REGISTRY_DIR")
        assert registry_dir, f"service {name} does not set {PREFIX}REGISTRY_DIR"
        volumes = {v.split(":")[1]: v.split(":")[0] for v in services[name].get("volumes", [])}
        assert registry_dir in volumes, f"service {name}: the registry is not on a volume"
        mounts.add(volumes[registry_dir])
    assert len(mounts) == 1, f"API and scorers use different registries: {mounts}"
    assert mounts.pop() in compose["volumes"]


def test_the_scorer_can_scale(services: dict) -> None:
    scorer = services["scorer"]
    assert "container_name" not in scorer, "a fixed container name prevents replicas"
    assert not scorer.get("ports"), "published ports prevent replicas"
    assert int(scorer.get("deploy", {}).get("replicas", 1)) >= 1


def test_no_secret_is_written_in_compose(services: dict) -> None:
    for name, service in services.items():
        for env_name, value in environment(service).items():
            if SECRET_NAME.search(env_name):
                assert INTERPOLATION.fullmatch(value.strip()), (
                    f"service {name}: {env_name} holds a literal value; interpolate it"
                )
    keys = environment(services["api"])[f"{PREFIX}API{DELIMITER}KEYS"]
    match = INTERPOLATION.fullmatch(keys)
    assert match and (match["op"] or "").endswith("?"), "the API keys must be required, no default"


def test_the_webhook_secret_is_required_and_never_silently_empty(services: dict) -> None:
    """An empty secret would make the API trust deliveries signed with an empty key."""
    secret = environment(services["api"])[f"{PREFIX}ARGILLA{DELIMITER}WEBHOOK_SECRET"]
    match = INTERPOLATION.fullmatch(secret)
    assert match and match["op"] == ":?", "require the webhook secret: ${NAME:?reason}"
    assert "off" in match["arg"], "say how to run before the webhook is registered"
    assert Settings(argilla={"webhook_secret": "off"}).argilla.webhook_secret is None
    with pytest.raises(ValidationError, match="empty"):
        Settings(argilla={"webhook_secret": ""})


# ---- deploy/Dockerfile --------------------------------------------------------------------


def test_the_dockerfile_copies_only_what_exists_and_is_in_the_context() -> None:
    ignore = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    ignore = [line for line in ignore if line and not line.startswith("#")]
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    excludes_all = "*" in ignore
    copies = 0
    for keyword, args in dockerfile_instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(args)
        if any(word.startswith("--from=") for word in words):
            continue  # from another build stage, not from the repository
        sources = [word for word in words if not word.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            if excludes_all:
                assert source.rstrip("/") in included, f"COPY {source}: .dockerignore drops it"
            copies += 1
    assert copies


def test_the_image_is_cpu_torch_offline_non_root_and_runs_alloop() -> None:
    instructions = dockerfile_instructions()
    first_from = next(args for keyword, args in instructions if keyword == "FROM")
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in instructions if k == "ARG" and "=" in a
    }
    assert interpolate_build_arg(first_from, args).startswith("python:3.11-slim")
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    torch_at = next(
        i
        for i, run in enumerate(runs)
        if "download.pytorch.org/whl/cpu" in run or "TORCH_INDEX_URL" in run
    )
    alloop_at = next(i for i, run in enumerate(runs) if '".[all]"' in run or " .[all]" in run)
    assert torch_at < alloop_at, "install CPU torch before alloop[all]"
    final = final_stage(instructions)
    env = dockerfile_env(final)
    assert env.get("HF_HUB_OFFLINE") == "1"
    for name in env:
        if name.startswith(PREFIX):
            assert maps_to_setting(name), f"Dockerfile ENV {name} is not a setting"
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    entrypoint = [exec_form(a) for k, a in final if k == "ENTRYPOINT"][-1]
    assert entrypoint[-1] == "alloop"
    assert "curl" in " ".join(runs), "the API healthcheck uses curl"


# ---- docs ---------------------------------------------------------------------------------


def documented_rows() -> dict[str, list[str]]:
    """Rows of the settings tables (header: variable, default, meaning) in
    docs/configuration.md, keyed by the variable in their first cell."""
    rows: dict[str, list[str]] = {}
    header: list[str] = []
    for line in CONFIG_DOC.read_text().splitlines():
        if not line.startswith("|"):
            header = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not header:
            header = cells
        elif header == ["variable", "default", "meaning"] and not set(cells[0]) <= {"-"}:
            rows[cells[0].strip("`")] = cells
    return rows


def test_configuration_doc_lists_every_setting() -> None:
    rows = documented_rows()
    missing = sorted(SETTING_NAMES - rows.keys())
    assert not missing, f"docs/configuration.md does not document {missing}"
    unknown = sorted(rows.keys() - SETTING_NAMES)
    assert not unknown, f"docs/configuration.md documents settings that do not exist: {unknown}"


def test_configuration_doc_shows_the_real_defaults() -> None:
    rows = documented_rows()
    for env_name, info in setting_fields():
        if info.default_factory is not None or info.default is None:
            continue
        default = info.default
        if isinstance(default, bool):
            expected = f"`{str(default).lower()}`"
        elif isinstance(default, str) and not default:
            expected = "(empty)"
        else:
            expected = f"`{default}`"
        assert expected in rows[env_name][1], (
            f"docs/configuration.md: {env_name} default should read {expected}"
        )


def test_deploy_doc_covers_scaling_volumes_rollback_and_health() -> None:
    text = DEPLOY_DOC.read_text()
    for needle in (
        "docker compose",
        "--scale scorer",
        "alloop models rollback",
        "/v1/models/rollback",
        "/health",
        "/metrics",
        "registry",
    ):
        assert needle in text, f"docs/deploy.md does not mention {needle}"
