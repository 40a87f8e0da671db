"""What one run needs: seeding, the experiment registry, the run store and the runner (one experiment, config
and seed, resumably)."""
