"""Workshop material (config ``content:``): git repositories pulled into people's homes, as the person.

- ``puller``: what runs as the person, in their home: nbgitpuller's pull of each repository, bounded in time,
  with a notice beside a folder that could not be brought up to date.
- ``merge``: nbgitpuller's ``GitPuller`` with upstream's version of a conflicting file kept beside the person's.
- ``runner``: root's side: which repositories are for whom, and starting the puller as the person.
- ``hook``: the spawn hook that pulls before a server starts; ``pangeohub content sync`` pulls for everyone running.
"""
