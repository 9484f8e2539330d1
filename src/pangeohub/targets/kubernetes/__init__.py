"""The Kubernetes execution target: the config rendered for the upstream jupyterhub and dask-gateway charts.

Nothing runs locally: `pangeohub render kubernetes` writes the deployment, `pangeohub deploy kubernetes`
applies it, `pangeohub build-images` builds the two images it runs. See docs/kubernetes.md.
"""
