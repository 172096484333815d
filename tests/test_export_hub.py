"""push_to_hub without a network: each way it cannot push is an ExportError naming the repository and saying the
export itself is complete (a mock Hub endpoint is not part of these tests: only loopback addresses are used)."""

import socket

import pytest

from arithmo.export import ExportError, push_to_hub


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no token saved by a login on this machine
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = tmp_path / "export"
    out.mkdir()
    (out / "Modelfile").write_text("FROM ./m.gguf\n")
    return out


def _closed_port() -> int:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_token_is_refused_before_any_request(folder, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)  # whatever file a login may have left
    with pytest.raises(ExportError, match=r"me/model: no Hugging Face token .*export itself is complete"):
        push_to_hub(folder, "me/model")


def test_offline_mode_says_so(folder, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ExportError, match="me/model: HF_HUB_OFFLINE is set"):
        push_to_hub(folder, "me/model", token="hf_test")


def test_unreachable_hub_names_the_endpoint(folder):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ExportError, match=rf"me/model at {endpoint}: ConnectError.*export itself is complete"):
        push_to_hub(folder, "me/model", token="hf_test", endpoint=endpoint)
