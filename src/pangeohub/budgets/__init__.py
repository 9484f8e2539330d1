"""Monthly budgets: per person and per group, in core-hours or money, held against the usage record.

``overrides`` keeps the budgets set from the command line; ``ledger`` works out each budget's state this month
from the config, the overrides and the usage record; the hub (spawn page, profiles), the gateway (new clusters),
the sampler (notices, admins' warnings) and JupyterLab (``labnotice``) all read the same state.
"""
