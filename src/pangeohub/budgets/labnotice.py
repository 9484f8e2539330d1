"""Shows a person's budget notice in JupyterLab, as one of its notifications.

JupyterLab asks its server at every load whether to notify about a new version (``/lab/api/update``), through
a class the server config names (``LabApp.check_for_updates_class``); the platform's names this one, which
answers with the person's budget notice instead (written by the sampler, see notices.py) and never goes to the
network. Loaded in people's servers only.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyterlab.handlers.announcements import CheckForUpdateABC

from pangeohub.budgets.notices import ENV


class BudgetNotice(CheckForUpdateABC):
    async def __call__(self):
        path = os.environ.get(ENV)
        if not path:
            return None
        try:
            return Path(path).read_text().strip() or None
        except OSError:  # no notice: the person is below every budget's notice level
            return None
