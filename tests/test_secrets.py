"""Secrets: the API key never shows in output, logs, answers, reports or files.

OPENAI_API_KEY is set to KEY against the scripted OpenAI-compatible server, which requires
exactly that bearer token (so every request that got through proves the key was sent), and
the server fails in the ways endpoints do: 401, 500, timeout, unreachable (plus the other
faults in process). The key must be absent from:

* stdout / stderr of `assistant ask --mode llm` subprocesses (streamed, --json, --batch);
* Answer JSON and error messages of in-process answers, and every log record (DEBUG up);
* an eval report written with the key configured (`evals.run.execute`, LLM mode + judge);
* every file under the data dir;
* repr / str / model_dump(mode="json") / model_dump_json() of Settings;
* error messages built from an openai error whose text echoes the key, and from a base URL
  that carries it (user:key@host, ?api-key=...).

The UI login's password (ASSISTANT_UI_AUTH or `assistant ui --auth user:pass`, a SecretStr)
is likewise absent from repr / str / model_dump of Settings and from the `ui` command's
output, and still works as the login.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support.openai_server import FAULTS, Reply, ScriptedOpenAIServer

KEY = "sk-test-SECRET-abc123"
FRAGMENTS = (KEY, "SECRET-abc123", "abc123")  # nor any recognisable part of it
ROOT = Path(__file__).resolve().parents[1]
ASSISTANT = Path(sys.executable).parent / "assistant"
QUESTION = "How does ReefWatch detect coral bleaching in drone imagery?"
REEF = "ReefWatch: Detecting Coral Bleaching from Low-Altitude Drone Imagery"
GOOD_REPLY = "ReefWatch segments bleached coral in drone orthomosaics [1]."


def assert_clean(where: str, text: str | bytes) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    for fragment in FRAGMENTS:
        assert fragment not in text, f"the API key leaked into {where}"


def scan_dir(root: Path) -> int:
    """Assert no file under `root` holds the key; returns how many files were read."""
    n = 0
    for path in root.rglob("*"):
        if path.is_file():
            assert_clean(str(path.relative_to(root)), path.read_bytes())
            n += 1
    return n


def closed_port_url(credentials: str = "") -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://{credentials}127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def server():
    with ScriptedOpenAIServer() as srv:
        srv.expected_api_key = KEY  # anything else gets 401: a 200 proves the key was sent
        srv.retry_after_ms = 10
        yield srv


@pytest.fixture
def fresh(server):
    server.reset()
    server.default_reply = Reply(text=GOOD_REPLY)
    return server


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, embedder) -> Path:
    from assistant.index import ingest
    from assistant.settings import Settings
    from tests.support.papers import SMALL_PAPERS

    root = tmp_path_factory.mktemp("secrets")
    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in SMALL_PAPERS), encoding="utf-8")
    data = root / "data"
    ingest(Settings(_env_file=None, data_dir=data), [corpus], embedder, progress=False)
    return data


def llm_settings(data_dir: Path, base_url: str, **extra):
    from assistant.settings import Settings

    return Settings(_env_file=None, data_dir=data_dir, llm_base_url=base_url,
                    llm_api_key=SecretStr(KEY), llm_model="test-model", llm_timeout_s=1.0,
                    llm_max_retries=0, answer_mode="llm", **extra)


# --- Settings ---------------------------------------------------------------------------------


def test_settings_never_show_the_key(monkeypatch, tmp_path):
    from assistant.settings import Settings

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == KEY
    assert_clean("repr(Settings)", repr(settings))
    assert_clean("str(Settings)", str(settings))
    assert_clean("model_dump(mode='json')", json.dumps(settings.model_dump(mode="json")))
    assert_clean("model_dump_json()", settings.model_dump_json())
    assert_clean("str(model_dump())", str(settings.model_dump()))
    assert settings.model_dump(mode="json")["llm_api_key"] == "**********"


# --- error messages ----------------------------------------------------------------------------


def test_llm_errors_never_echo_the_key(tmp_path):
    """A provider error whose text quotes the key (OpenAI's 401 does, partly) is never shown."""
    import httpx
    import openai

    from assistant.llm import LLM, Generation

    llm = LLM(llm_settings(tmp_path, "http://127.0.0.1:9/v1"))
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions",
                            headers={"Authorization": f"Bearer {KEY}"})
    body = {"error": {"message": f"Incorrect API key provided: {KEY}"}}
    errors = [
        openai.AuthenticationError(f"Incorrect API key provided: {KEY}",
                                   response=httpx.Response(401, request=request), body=body),
        openai.InternalServerError(f"upstream said {KEY}",
                                   response=httpx.Response(500, request=request), body=body),
        openai.APIConnectionError(message=f"cannot connect with {KEY}", request=request),
        openai.APITimeoutError(request=request),
        httpx.ReadError(f"cut while sending {KEY}", request=request),
        ValueError(f"bad JSON near {KEY}"),
        RuntimeError(f"anything else {KEY}"),
    ]
    for error in errors:
        message = str(llm._explain(error, Generation(attempts=1)))
        assert_clean(f"the message for {type(error).__name__}", message)


@pytest.mark.parametrize("base_url", [
    closed_port_url(f"user:{KEY}@"),
    closed_port_url() + f"?api-key={KEY}",
], ids=["user:key@host", "query api-key"])
def test_key_in_the_base_url_is_not_shown(data_dir, embedder, base_url):
    from assistant.services import Services

    settings = llm_settings(data_dir, base_url)
    services = Services(settings, embedder=embedder)
    answer = services.answerer.answer(QUESTION, mode="llm")
    services.index.close()
    assert answer.error and "Cannot reach" in answer.error
    assert_clean("Answer JSON", json.dumps(answer.to_json_dict()))


# --- in process: every fault ---------------------------------------------------------------------


@pytest.mark.slow
def test_in_process_answers_logs_and_eval_report(fresh, data_dir, embedder, caplog):
    from assistant.services import Services
    from evals.baselines import OURS
    from evals.run import EvalOptions, execute

    caplog.set_level(logging.DEBUG)  # every logger, every level
    settings = llm_settings(data_dir, fresh.base_url)
    services = Services(settings, embedder=embedder)
    outcomes = {}
    for fault in sorted(FAULTS):
        fresh.reset()
        fresh.queue(Reply(fault=fault, delay_s=3.0 if fault == "timeout" else 0.0))
        answer = services.answerer.answer(QUESTION, mode="llm")
        outcomes[fault] = answer.error
        assert_clean(f"the Answer for fault {fault}", json.dumps(answer.to_json_dict()))
        assert answer.error, fault
    fresh.reset()
    answer = services.answerer.answer(QUESTION, mode="llm")
    assert answer.error is None and answer.citations[0].title == REEF
    sent = fresh.chat_requests()[-1]["headers"]["Authorization"]
    assert sent == f"Bearer {KEY}"  # the key really was configured and sent
    history = services.answerer.answer("what dataset did it use?", [answer], mode="llm")
    assert_clean("a follow-up Answer", json.dumps(history.to_json_dict()))

    unreachable = Services(llm_settings(data_dir, closed_port_url()), embedder=embedder)
    answer = unreachable.answerer.answer(QUESTION, mode="llm")
    assert answer.error and "Cannot reach" in answer.error
    assert_clean("the unreachable Answer", json.dumps(answer.to_json_dict()))
    unreachable.index.close()

    # An eval report written with the key configured (LLM answers: one fails, one works).
    fresh.reset()
    fresh.queue(Reply(fault="401"), Reply(fault="500"))
    rows = [{"id": f"secret-{i}", "type": "lookup", "question": QUESTION,
             "gold_titles": [REEF], "expected_keywords": []} for i in range(3)]
    report_dir = data_dir / "evals" / "report"
    outcome = execute(services, rows, EvalOptions(mode="llm", configs=(OURS,), progress=False),
                      judge=True, report_dir=report_dir, log=lambda message: None)
    assert outcome.report_dir and any(report_dir.iterdir())
    errors = [r["error"] for r in outcome.run.rows]
    assert any(errors) and not all(errors), errors
    services.index.close()

    for record in caplog.records:
        assert_clean(f"log record {record.name}", record.getMessage())
    assert_clean("the captured log", caplog.text)
    assert scan_dir(data_dir) > 5
    print("\nerrors shown:", json.dumps(outcomes, indent=1))


# --- subprocesses: the real command ------------------------------------------------------------


def run_ask(data_dir: Path, base_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    env.update({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base_url,
                "ASSISTANT_LLM_MODEL": "test-model", "ASSISTANT_LLM_TIMEOUT_S": "1",
                "ASSISTANT_LLM_MAX_RETRIES": "0", "TOKENIZERS_PARALLELISM": "false"})
    return subprocess.run([str(ASSISTANT), "ask", *args, "--mode", "llm",
                           "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=180)


@pytest.mark.slow
def test_ask_subprocesses_never_print_the_key(fresh, data_dir, tmp_path):
    # One process, four requests: 401, 500, timeout, then a good answer.
    fresh.queue(Reply(fault="401"), Reply(fault="500"), Reply(fault="timeout", delay_s=3.0))
    batch = tmp_path / "questions.jsonl"
    batch.write_text("".join(json.dumps({"question": QUESTION, "id": i}) + "\n"
                             for i in range(4)))
    proc = run_ask(data_dir, fresh.base_url, "--batch", str(batch))
    assert proc.returncode == 0, proc.stderr
    assert_clean("stdout of ask --batch", proc.stdout)
    assert_clean("stderr of ask --batch", proc.stderr)
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [a["error"] for a in answers]
    assert all(kinds[:3]) and kinds[3] is None, kinds
    assert "rejected the API key (401)" in kinds[0] and "HTTP 500" in kinds[1]
    assert "did not answer within" in kinds[2]
    assert fresh.chat_requests()[-1]["headers"]["Authorization"] == f"Bearer {KEY}"

    # Streamed to the terminal, endpoint unreachable: exit 1, a one-line reason.
    proc = run_ask(data_dir, closed_port_url(), QUESTION)
    assert proc.returncode == 1
    assert "Cannot reach the LLM endpoint" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert_clean("stdout of ask (unreachable)", proc.stdout)
    assert_clean("stderr of ask (unreachable)", proc.stderr)
    assert scan_dir(data_dir) > 5


# --- the UI login (ASSISTANT_UI_AUTH / --auth) ---------------------------------------------------

UI_PASSWORD = "pw-SECRET-ui-789"
UI_FRAGMENTS = (UI_PASSWORD, "SECRET-ui", "ui-789")


def assert_no_ui_password(where: str, text: str) -> None:
    for fragment in UI_FRAGMENTS:
        assert fragment not in text, f"the UI password leaked into {where}"


def test_settings_never_show_the_ui_password(monkeypatch, tmp_path):
    from assistant.settings import Settings
    from ui.app import launch_options, parse_auth

    monkeypatch.setenv("ASSISTANT_UI_AUTH", f"alice:{UI_PASSWORD}")
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert isinstance(settings.ui_auth, SecretStr)
    assert settings.ui_auth.get_secret_value() == f"alice:{UI_PASSWORD}"
    assert_no_ui_password("repr(Settings)", repr(settings))
    assert_no_ui_password("str(Settings)", str(settings))
    assert_no_ui_password("model_dump(mode='json')", json.dumps(settings.model_dump(mode="json")))
    assert_no_ui_password("model_dump_json()", settings.model_dump_json())
    assert_no_ui_password("str(model_dump())", str(settings.model_dump()))
    assert_no_ui_password("repr(ui_auth)", repr(settings.ui_auth))
    assert settings.model_dump(mode="json")["ui_auth"] == "**********"
    # ...and it still is the login.
    assert launch_options(settings)["auth"] == ("alice", UI_PASSWORD)
    assert launch_options(settings, auth="bob:pw")["auth"] == ("bob", "pw")
    assert parse_auth(SecretStr("carol:x:y")) == ("carol", "x:y")
    assert parse_auth(SecretStr("")) is None and parse_auth(None) is None
    with pytest.raises(ValueError) as bad:
        parse_auth(SecretStr(f"no-colon-{UI_PASSWORD}"))
    assert_no_ui_password("the parse error", str(bad.value))


def test_ui_command_takes_the_login_from_auth_or_the_environment(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import assistant.ingest
    import ui.app
    from assistant.cli import app

    launched: list = []
    monkeypatch.setattr(assistant.ingest, "ensure_index", lambda *a, **kw: False)
    monkeypatch.setattr(ui.app, "launch", lambda settings, services, **kw: launched.append(kw))
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]

    def ui_login(*args: str, env: dict | None = None):
        launched.clear()
        result = runner.invoke(app, ["ui", *data, *args], env=env)
        assert_no_ui_password("the output of `assistant ui`", result.output)
        return result

    result = ui_login("--auth", f"alice:{UI_PASSWORD}")
    assert result.exit_code == 0, result.output
    login = launched[0]["auth"]
    assert isinstance(login, SecretStr) and ui.app.parse_auth(login) == ("alice", UI_PASSWORD)
    assert_no_ui_password("repr of the login passed to launch", repr(launched[0]))

    result = ui_login(env={"ASSISTANT_UI_AUTH": f"bob:{UI_PASSWORD}"})
    assert result.exit_code == 0, result.output
    assert ui.app.parse_auth(launched[0]["auth"]) == ("bob", UI_PASSWORD)

    result = ui_login()
    assert result.exit_code == 0 and launched[0]["auth"] is None  # no login set: none

    result = ui_login("--auth", f"no-colon-{UI_PASSWORD}")
    assert result.exit_code == 2 and not launched
    assert "user:password" in result.output and "Traceback" not in result.output
