"""The Slurm execution target: people's servers and Dask clusters run as Slurm jobs on compute nodes."""
