"""Spawn hook: tells the server where its person's budget notice is (shown in JupyterLab by labnotice.py)."""

from __future__ import annotations

from pangeohub.budgets.notices import ENV, notice_file


async def budget_hook(spawner, account) -> dict[str, str]:
    rt = spawner.runtime
    if rt.config.target.kind != "local":  # budgets are held on the local target only (config/model.py)
        return {}
    return {ENV: str(notice_file(rt.paths, spawner.user.name))}
