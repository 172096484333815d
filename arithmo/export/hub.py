"""Push an exported folder (merged safetensors, or GGUF + Modelfile) to a Hugging Face Hub model repository."""

from __future__ import annotations

import os
from pathlib import Path

from arithmo.export import ExportError


def push_to_hub(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
                endpoint: str | None = None) -> str:
    """Create `repo_id` if needed and upload every file of `folder` in one commit; returns the commit URL.

    The token is `token`, else HF_TOKEN or the one `hf auth login` saved; the endpoint is `endpoint`, else
    HF_ENDPOINT (huggingface.co). Raises ExportError, naming the repository and that the export itself is
    complete, when there is no token, HF_HUB_OFFLINE is set, or the Hub cannot be reached or refuses.
    """
    import httpx
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    folder = Path(folder)
    kept = f"the export itself is complete in {folder}"
    token = token or get_token()
    if not token:
        raise ExportError(f"cannot push to {repo_id}: no Hugging Face token (pass --hub-token, set HF_TOKEN or run "
                          f"`hf auth login`); {kept}")
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT"), token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                   commit_message=f"arithmo export of {folder.name}")
    except OfflineModeIsEnabled as err:
        raise ExportError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set ({err}); {kept}") from err
    except (HfHubHTTPError, httpx.HTTPError, OSError) as err:
        where = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        raise ExportError(f"cannot push to {repo_id} at {where}: {type(err).__name__}: {err} (no network, or the "
                          f"token may not write there); {kept}") from err
    return str(commit.commit_url if hasattr(commit, "commit_url") else commit)
