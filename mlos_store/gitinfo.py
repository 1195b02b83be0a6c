"""Where an experiment's configuration came from: the git checkout holding it.

An experiment records the remote and commit of the checkout that holds its
root environment config file, so results can be traced to the exact
configuration that produced them. Only an existing file inside a git
checkout gives an answer; anything else (no such file, no git, not a
checkout, git failing or hanging) records nothing rather than failing the
experiment.
"""

from __future__ import annotations

import os
import subprocess

GIT_TIMEOUT_S = 5.0


def git_origin(root_env_config: str) -> tuple[str | None, str | None]:
    """``(repository, commit)`` of the checkout holding ``root_env_config``, else ``(None, None)``.

    The repository is the ``origin`` remote's URL, or the checkout's own
    directory when it has no such remote.
    """
    path = os.path.abspath(root_env_config)
    if not os.path.isfile(path):
        return None, None
    folder = os.path.dirname(path)
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    repository = _git(folder, "remote", "get-url", "origin") or _git(folder, "rev-parse", "--show-toplevel")
    return repository, commit


def _git(folder: str, *args: str) -> str | None:
    """One line of git output, or None when git is missing or fails."""
    try:
        done = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None
